"""`netcon demo`: fill an empty database with a demo cloud."""

from __future__ import annotations

import sys

from core.cli.context import Context
from core.cli.spec import Command, arg
from core.linux.sysfs import has_8021q


def load_demo(ctx: Context) -> int | None:
    service = ctx.service
    if ctx.args.open and service.list_projects():
        print(f"{service.db.safe_url} already holds projects; opening it", file=sys.stderr)
    else:
        from core.service.demo import load_demo as fill

        # VXLAN segments where this kernel cannot make 802.1Q links, so that the demo
        # cloud can be applied on the machine it was made on.
        fill(service, segmentation=None if has_8021q() else "vxlan")
        ctx.output.done(
            f"demo cloud written to {service.db.safe_url}", {"database": service.db.safe_url}
        )
    if ctx.args.open:
        if ctx.console is None:
            print("netcon: this command line has no console; run 'netcon'", file=sys.stderr)
            return 2
        return ctx.console(service, False)
    return None


command = Command(
    "demo",
    "fill an empty database with a demo cloud to explore",
    (
        arg(
            "--open",
            action="store_true",
            help="then open the console; a database that already holds projects is left as it is",
        ),
    ),
    load_demo,
)
