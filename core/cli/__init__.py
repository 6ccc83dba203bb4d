"""`netcon`: the headless command line.

Only what a command needs is imported: ``--help`` reads no database, the lease hook and
name completion skip the parser altogether, and the service (SQLAlchemy) is opened by
the first handler that asks for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.cli.context import Console

# Commands that run without the parser: dnsmasq calls the first on every lease event,
# the shell the second on every Tab.
LEAN = ("dhcp-event", "complete")


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in LEAN and not {"-h", "--help"} & set(words):
        from core.cli import lean

        return lean.run(words)
    if words[:1] == ["-"]:
        words[0] = "batch"
    from core.cli.run import run_command

    return run_command(words, console)
