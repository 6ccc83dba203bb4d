"""`netcon demo`: fill an empty database with a demo cloud."""

from __future__ import annotations

import argparse

from tui.cli.context import Context


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    demo = commands.add_parser(
        "demo", parents=[common], help="fill an empty database with a demo cloud to explore"
    )
    demo.set_defaults(handler=load_demo)


def load_demo(ctx: Context) -> None:
    ctx.service.load_demo()
    ctx.say(f"demo cloud written to {ctx.service.db.safe_url}", database=ctx.service.db.safe_url)
