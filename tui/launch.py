"""The `netcon` executable: the headless command line, and the console when no command is
given. The console is handed to the command line as a callback, so `core` never imports
`tui` and a command never pays for Textual."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.service import NetconService


def open_console(service: NetconService, read_only: bool) -> int:
    from tui.app import run_console

    run_console(service, read_only=read_only)
    return 0


def main(argv: list[str] | None = None) -> int:
    from core.cli import main as command_line

    return command_line(sys.argv[1:] if argv is None else argv, console=open_console)
