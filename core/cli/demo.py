"""`netcon demo`: fill an empty database with a demo cloud."""

from __future__ import annotations

import sys

from core.cli.context import Context
from core.cli.spec import Command, arg


def load_demo(ctx: Context) -> int | None:
    service = ctx.service
    if ctx.args.open and service.list_projects():
        print(f"{service.db.safe_url} already holds projects; opening it", file=sys.stderr)
    else:
        from core.service.demo import load_demo as fill

        fill(service)
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
