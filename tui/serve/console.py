"""One browser session's console process: the `netcon` console under Textual's web
driver, started by netcon serve for one page and ended with its websocket.

If netcon serve itself is killed, nothing would tell this process to quit (the web
driver only stops reading its input), so it asks the kernel for SIGTERM when its parent
dies; the web driver turns that into a clean exit.
"""

from __future__ import annotations

import ctypes
import json
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


def _read(count: int) -> bytes:
    # os.read, not sys.stdin: nothing past this packet may be buffered away from the
    # web driver, which reads the rest.
    data = b""
    while len(data) < count:
        chunk = os.read(0, count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _take_size() -> bool:
    """Wait for the browser's terminal size, the first packet netcon serve sends, and
    hand it to the web driver; False when the server ends this console instead.

    A console is started while its page loads, before the page has said how big its
    terminal is; drawing at a guess and resizing would lay the first view out for the
    wrong width."""
    header = _read(5)
    if len(header) < 5 or header[:1] != b"M":
        return False
    try:
        packet = json.loads(_read(int.from_bytes(header[1:], "big")))
        width, height = int(packet["width"]), int(packet["height"])
    except (ValueError, KeyError, TypeError):
        return False
    if packet.get("type") != "resize":
        return False
    os.environ["COLUMNS"], os.environ["ROWS"] = str(width), str(height)
    return True


def _prepare() -> None:
    """Import what the console imports before it draws, while the page loads: the
    console's own modules, and what Textual itself only imports once it runs (the web
    driver and its input parser, the test pilot its run loop names, the layouts and
    scroll bars of the first screen, the table of wide characters)."""
    import textual.drivers.headless_driver  # noqa: F401
    import textual.drivers.web_driver  # noqa: F401
    import textual.layouts.factory  # noqa: F401
    import textual.layouts.horizontal  # noqa: F401
    import textual.layouts.stream  # noqa: F401
    import textual.pilot  # noqa: F401
    import textual.scrollbar  # noqa: F401
    import textual.widgets._label  # noqa: F401
    from rich.cells import cell_len

    import tui.app  # noqa: F401
    import tui.start  # noqa: F401

    cell_len("…›▲")


def main() -> int:
    _end_with_parent()
    _prepare()
    from tui.launch import main as netcon

    if not _take_size():
        return 0
    return netcon(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
