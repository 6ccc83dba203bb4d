"""No console without a terminal: one line and exit status 2, at once.

Checked once the database is known to be one the console can open (a wrong database is
said first, as the command line says it) and before the console is imported, so that a
script that runs `netcon` with no command and no terminal learns it at once instead of
waiting on a console that can neither draw nor read.
"""

from __future__ import annotations

import os
import sys

NEEDS_TERMINAL = (
    "netcon: the console needs a terminal (stdin or stderr is not a terminal); "
    "use 'netcon COMMAND' from scripts"
)

# Textual's own terminal driver, which TEXTUAL_DRIVER may also name.
TERMINAL_DRIVER = ":LinuxDriver"


def missing_terminal() -> str | None:
    """Why the console cannot run here, in one line; None when it can.

    Textual draws on stderr and reads keys from stdin; without a terminal on both it
    would draw nowhere or read nothing (and redraw for ever). Under another driver
    (TEXTUAL_DRIVER, as netcon serve sets for its browser consoles) the keys and screen
    go elsewhere."""
    driver = os.environ.get("TEXTUAL_DRIVER", "")
    if driver and not driver.endswith(TERMINAL_DRIVER):
        return None
    streams = (sys.__stdin__, sys.__stderr__)
    if all(stream is not None and stream.isatty() for stream in streams):
        return None
    return NEEDS_TERMINAL


def refused_without_terminal() -> int | None:
    """Exit status 2 (a usage error) after saying why, when the console cannot run here;
    None when it can."""
    reason = missing_terminal()
    if reason is None:
        return None
    print(reason, file=sys.stderr)
    return 2
