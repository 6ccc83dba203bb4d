"""`netcon demo`: fill an empty database with a demo cloud."""

from __future__ import annotations

import argparse
import sys

from tui.cli.context import Context


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    demo = commands.add_parser(
        "demo", parents=[common], help="fill an empty database with a demo cloud to explore"
    )
    demo.add_argument(
        "--open",
        action="store_true",
        help="then open the console; a database that already holds projects is left as it is",
    )
    demo.set_defaults(handler=load_demo)


def load_demo(ctx: Context) -> int | None:
    if ctx.args.open and ctx.service.list_projects():
        print(f"{ctx.service.db.safe_url} already holds projects; opening it", file=sys.stderr)
    else:
        ctx.service.load_demo()
        ctx.say(
            f"demo cloud written to {ctx.service.db.safe_url}", database=ctx.service.db.safe_url
        )
    if ctx.args.open:
        from tui.cli import open_console

        return open_console(ctx)
    return None
