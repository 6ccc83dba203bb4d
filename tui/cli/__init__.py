"""`netcon`: the headless command line. With no command it opens the console."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from core.errors import NetconError
from tui.cli.context import Context

COMMAND_MODULES = [
    "networks",
    "fixed",
    "floating",
    "projects",
    "instances",
    "secgroups",
    "vpn",
    "demo",
    "host",
]


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are bad input too: one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("netcon").strip()
        where = f" {command}" if command else ""
        self.exit(2, f"netcon{where}: {message} (see 'netcon{where} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="database URL (also NETCON_DATABASE_URL); default: the embedded SQLite file",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    parser = OneLineParser(
        prog="netcon",
        description="Run a small cloud's networks: Flat, FlatDHCP and VLAN managers, "
        "fixed and floating IPs, project VPNs.",
        parents=[common],
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="open the console without any action that changes state",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tui.cli.{name}")
        module.register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, default in (("db", None), ("json", False)):
        if not hasattr(args, option):
            setattr(args, option, default)
    context = Context(args)
    try:
        if args.command is None:
            return open_console(context)
        handler = args.handler
        return int(handler(context) or 0)
    except NetconError as exc:
        print(f"netcon: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `netcon fixed list | head` closes the pipe early; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        # A bug, not bad input: still one line, unless asked for the whole story.
        if os.environ.get("NETCON_DEBUG"):
            raise
        print(
            f"netcon: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
            "(NETCON_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


def open_console(context: Context) -> int:
    from tui.app import run_console

    run_console(context.service, read_only=bool(context.args.read_only))
    return 0
