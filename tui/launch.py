"""The `netcon` executable: the headless command line, and the console when no command is
given. The console is handed to the command line as a callback, so `core` never imports
`tui` and a command never pays for Textual.

`netcon` alone (or with only ``--db`` and ``--read-only``) skips the parser: the console
draws its first rows before the service is opened (:mod:`tui.start`), and hands over to
the command line only when that cannot be done."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.cli.frontends import ServeOptions
    from core.service import NetconService


def open_console(service: NetconService, read_only: bool) -> int:
    from tui.app import run_console

    run_console(service, read_only=read_only)
    return 0


def serve_console(options: ServeOptions) -> int:
    from tui.serve.server import serve

    return serve(options)


def console_words(words: list[str]) -> tuple[str | None, bool] | None:
    """``(--db, --read-only)`` when the words only open the console with those options;
    None for anything else, which the parser reads (or refuses)."""
    db: str | None = None
    read_only = False
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--read-only":
            read_only = True
        elif word == "--db" and index + 1 < len(words) and not words[index + 1].startswith("-"):
            db = words[index + 1]
            index += 1
        elif word.startswith("--db="):
            db = word.removeprefix("--db=")
        else:
            return None
        index += 1
    return db, read_only


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    options = console_words(words)
    if options is not None:
        from tui.start import start_console

        status = start_console(*options)
        if status is not None:
            return status
    from core.cli import main as command_line
    from core.cli.collector import spare_exit

    status = command_line(words, console=open_console, serve=serve_console)
    spare_exit()
    return status
