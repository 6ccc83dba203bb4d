"""One browser session's console process: the `netcon` console under Textual's web
driver, started by netcon serve for one websocket and ended with it.

If netcon serve itself is killed, nothing would tell this process to quit (the web
driver only stops reading its input), so it asks the kernel for SIGTERM when its parent
dies; the web driver turns that into a clean exit.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from tui.serve import SERVER_PID

PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the server's own stop still ends it
        return
    # The parent may have died before the request was made.
    expected = os.environ.get(SERVER_PID)
    if expected and os.getppid() != int(expected):
        sys.exit(1)


def main() -> int:
    _end_with_parent()
    from tui.launch import main as netcon

    return netcon(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
