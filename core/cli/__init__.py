"""`netcon`: the headless command line.

Only what a command needs is imported: ``--help`` reads no database, the lease hook and
name completion skip the parser altogether, and the service (SQLAlchemy) is opened by
the first handler that asks for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from core.cli.collector import defer as defer_collector
from core.cli.words import command_index

if TYPE_CHECKING:
    from core.cli.frontends import Console, Serve

# Commands that run without the parser: dnsmasq calls the first on every lease event,
# the shell the second on every Tab. (`host list` too, when it can: see core.cli.lean.)
LEAN = ("dhcp-event", "complete")


def main(
    argv: list[str] | None = None,
    console: Console | None = None,
    serve: Serve | None = None,
) -> int:
    defer_collector()
    words = list(sys.argv[1:] if argv is None else argv)
    at = command_index(words)
    if at is not None and words[at] in LEAN and not {"-h", "--help"} & set(words):
        from core.cli import lean

        return lean.run([words[at], *words[:at], *words[at + 1 :]])
    helping = bool({"-h", "--help"} & set(words))
    if at is not None and words[at : at + 2] == ["host", "list"] and not helping:
        from core.cli import lean

        listed = lean.host_list([*words[:at], *words[at + 2 :]])
        if listed is not None:
            return listed
    if at is not None and words[at] == "-":
        words[at] = "batch"
    from core.cli.run import run_command

    return run_command(words, console, serve)
