"""Parse one command line and run its handler."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from core.cli.collector import resume as resume_collector
from core.cli.commands import commands_for, every_command
from core.cli.context import Context
from core.cli.outcome import guarded, parse, report
from core.cli.parser import build_parser
from core.errors import NetconError

if TYPE_CHECKING:
    from core.cli.frontends import Console, Serve
    from core.service import NetconService

def run_command(
    words: list[str], console: Console | None, serve: Serve | None = None
) -> int:
    as_json = "--json" in words
    try:
        args = parse(build_parser(commands_for(words), words), words)
    except NetconError as exc:
        return report(exc, as_json)
    context = Context(args, console=console, serve=serve)
    try:
        if getattr(args, "command", None) is None:
            if console is None:
                build_parser(every_command()).print_help(sys.stderr)
                return 2
            return guarded(context, lambda: _open_console(context, console))
        return guarded(context, lambda: args.handler(context))
    finally:
        # Closed on purpose: the collector may never reach the connections (they are
        # frozen with the rest of start-up), and SQLite removes its -wal and -shm
        # files only when the last connection closes.
        context.close()


def _open_console(context: Context, console: Console) -> int:
    service = _console_service(context)
    resume_collector()
    return console(service, bool(context.args.read_only))


def _console_service(context: Context) -> NetconService:
    """The service the console runs on: with ``--netns``, its host is that namespace
    (the header names it, its plan is read and applied there), as `host plan --netns`."""
    service = context.service
    netns = getattr(context.args, "console_netns", None)
    if netns is not None:
        service.settings = service.settings.replace(netns=netns)
    return service
