"""The `netcon` argument parser, built from the command modules' declarations."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import NoReturn

from core.cli.spec import Command, Group, netns_arg
from core.cli.words import command_index
from core.defaults import LOCK_TIMEOUT
from core.errors import InvalidInput

DESCRIPTION = (
    "Run a small cloud's networks: Flat, FlatDHCP and VLAN managers, fixed and floating IPs, "
    "project VPNs. With no command, open the console."
)


class UsageError(InvalidInput):
    """A command line argparse could not read: bad input like any other (exit status 2)."""

    def __init__(self, command: str, message: str) -> None:
        where = f"netcon {command}".strip()
        super().__init__(command or "command line", f"{message} (see '{where} --help')")


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        from core.validate import shown

        # argparse quotes the word it could not read whole; a word of 8,000 characters
        # is shown cut, as every bad value is.
        message = re.sub(r"'([^']{80,})'", lambda m: shown(m.group(1)), message)
        raise UsageError(self.prog.removeprefix("netcon").strip(), message)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a number of seconds") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{value:g} is outside 0-86400 seconds")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="database URL (also NETCON_DATABASE_URL); default: the embedded SQLite file",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"how long a change waits for another writer (default {LOCK_TIMEOUT:.0f})",
    )
    return common


def _add(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    item: Group | Command,
    common: argparse.ArgumentParser,
    dest: str,
    *,
    whole: bool = True,
) -> None:
    if not whole:
        # Named in the list of commands, with nothing behind it: the command line names
        # another one, and building every parser would cost a fifth of a read command.
        sub.add_parser(item.name, help=item.help)
        return
    if isinstance(item, Command):
        parser = sub.add_parser(
            item.name, parents=[common], help=item.help, description=item.description or item.help
        )
        for a in item.args:
            parser.add_argument(*a.names, **a.options)
        parser.set_defaults(handler=item.handler)
        return
    parser = sub.add_parser(item.name, help=item.help, description=item.help)
    children = parser.add_subparsers(dest=dest, metavar="ACTION", required=True)
    for command in item.commands:
        _add(children, command, common, dest)
    for group in item.groups:
        _add(children, group, common, f"{dest}_{group.name}")


def build_parser(
    commands: Sequence[Group | Command], words: list[str] | None = None
) -> argparse.ArgumentParser:
    """The whole parser, or with ``words`` only the part those words can reach."""
    named = _named_command(commands, words) if words is not None else None
    common = _common()
    parser = OneLineParser(prog="netcon", description=DESCRIPTION, parents=[common])
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="open the console without any action that changes state",
    )
    # The commands that read command lines themselves (`batch`) or describe them
    # (`completion`) find the list here, so that their modules need not import the list
    # they are part of.
    parser.set_defaults(commands=tuple(commands))
    console_netns = netns_arg()
    parser.add_argument(
        *console_netns.names,
        **{
            **console_netns.options,
            "dest": "console_netns",
            "help": "open the console on this network namespace (its plan and applies)",
        },
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for item in commands:
        _add(sub, item, common, "action", whole=named is None or item.name == named)
    return parser


def _named_command(commands: Sequence[Group | Command], words: list[str]) -> str | None:
    """The command the words name, or None when they name none (help, or an error that
    lists every command)."""
    at = command_index(words)
    names = {item.name for item in commands}
    return words[at] if at is not None and words[at] in names else None
