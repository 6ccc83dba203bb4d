"""`netcon serve` in a real headless Chromium (Debian's, driven by Playwright): what the
admin sees in the page, what another profile and another origin get, the session limit,
a closed tab and a console that dies."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving import Served, alive, environment, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

try:
    from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright
except ImportError:  # pragma: no cover - scripts/test installs it
    sync_playwright = None

pytestmark = pytest.mark.skipif(
    sync_playwright is None or not os.path.exists(CHROMIUM) or shutil.which("tmux") is None,
    reason="needs Chromium (apt-get install chromium), Playwright for Python and tmux",
)

# The machine's network is closed: anything Chromium would fetch by itself hangs it.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# The page keeps its xterm.js terminal to itself; a test reads what the terminal holds
# by catching the object that sets itself a fit addon as textual.js builds it.
CATCH_TERMINAL = """
window.__terminals = [];
Object.defineProperty(Object.prototype, "fitAddon", {
  configurable: true,
  set(value) {
    window.__terminals.push(this);
    Object.defineProperty(this, "fitAddon", {
      value, writable: true, configurable: true, enumerable: true,
    });
  },
});
"""
READ_SCREEN = """() => {
  const holder = window.__terminals && window.__terminals[0];
  if (!holder || !holder.terminal) return null;
  const terminal = holder.terminal, buffer = terminal.buffer.active, lines = [];
  for (let y = 0; y < terminal.rows; y++) {
    lines.push(buffer.getLine(buffer.viewportY + y).translateToString(true));
  }
  return {cols: terminal.cols, rows: terminal.rows, lines};
}"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> str:
    path = tmp_path_factory.mktemp("browser") / "cloud.db"
    shutil.copy(demo_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def serve(tmp_path: Path, cloud: str) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*args: str) -> Served:
        served = Served(tmp_path, cloud, *args)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert sync_playwright is not None
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def profile(
    playwright: Playwright, tmp_path: Path
) -> Iterator[Callable[..., BrowserContext]]:
    """A fresh browser profile each call: its own user data directory and cookies."""
    opened: list[BrowserContext] = []

    def open_profile(*args: str) -> BrowserContext:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(opened)}"),
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, *args],
            viewport={"width": 1000, "height": 600},
        )
        context.add_init_script(CATCH_TERMINAL)
        opened.append(context)
        return context

    yield open_profile
    for context in opened:
        context.close()


def screen(page: Page) -> dict[str, Any] | None:
    return page.evaluate(READ_SCREEN)


def wait_screen(page: Page, text: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        seen = screen(page)
        if seen is not None and any(text in line for line in seen["lines"]):
            return seen
        page.wait_for_timeout(100)
    lines = "\n".join(seen["lines"]) if seen else "(no terminal)"
    raise AssertionError(f"{text!r} never drawn in the page; it showed:\n{lines}")


THUMBS = str.maketrans(dict.fromkeys("▁▂▃▄▅▆▇█▔▕▏", " "))


def without_thumbs(line: str) -> str:
    return line.translate(THUMBS).rstrip()


def first_page(context: BrowserContext) -> Page:
    return context.pages[0] if context.pages else context.new_page()


def terminal_screen(tmp_path: Path, db: str, cols: int, rows: int, text: str) -> list[str]:
    """The same console in tmux at the same size: the screen once ``text`` is drawn."""
    tmux = ["tmux", "-L", f"nc-serve-{os.getpid()}"]
    env = environment(tmp_path)
    command = f"{sys.executable} -m tui --db {db}"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "same", "-x", str(cols), "-y", str(rows),
         "-e", f"XDG_CONFIG_HOME={env['XDG_CONFIG_HOME']}",
         "-e", f"XDG_STATE_HOME={env['XDG_STATE_HOME']}", command],
        check=True, env={**env, "TERM": "xterm-256color"},
    )
    try:
        deadline = time.monotonic() + 60
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", "same"],
                check=True, capture_output=True, text=True,
            ).stdout.splitlines()
            if any(text in line for line in lines):
                return lines
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never drawn in tmux:\n" + "\n".join(lines))
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_the_browser_console_is_the_terminal_console(
    serve: Callable[..., Served],
    profile: Callable[..., BrowserContext],
    tmp_path: Path,
    cloud: str,
) -> None:
    served = serve()
    page = first_page(profile())
    page.goto(served.url)
    # The token leaves the address bar: the page is the server's root.
    assert page.url == served.base + "/"
    drawn = wait_screen(page, "Networks (6)")
    page.screenshot(path=str(tmp_path / "networks.png"))
    assert (tmp_path / "networks.png").stat().st_size > 10_000

    header, *rest = [line.rstrip() for line in drawn["lines"]]
    assert header.startswith(" netcon  browser@") and os.uname().nodename in header
    # Below the header (which names the browser session and has the clock), the page
    # shows what the console shows in a terminal of the same size, line for line.
    # Scroll bars are left out: with truecolour (the browser) a thumb is a coloured
    # cell, with 256 colours (tmux) a block glyph.
    terminal = terminal_screen(tmp_path, cloud, drawn["cols"], drawn["rows"], "Networks (6)")
    assert [without_thumbs(line) for line in rest] == [
        without_thumbs(line) for line in terminal[1:]
    ]
    assert any("10.0.0.0/24" in line and "alpha" in line for line in rest)

    page.keyboard.type(":fip")
    page.keyboard.press("Enter")
    drawn = wait_screen(page, "Floating IPs (14)")
    assert any("203.0.113.1" in line for line in drawn["lines"])


def test_a_second_profile_without_the_cookie_gets_403(
    serve: Callable[..., Served], profile: Callable[..., BrowserContext]
) -> None:
    served = serve()
    admin = first_page(profile())
    admin.goto(served.url)
    wait_screen(admin, "Networks (6)")

    stranger = first_page(profile())
    for address, says in (
        (served.base + "/", "Not signed in"),
        (served.url, "Token refused"),  # one-time: the admin has used it
        (served.base + "/static/js/textual.js", "Not signed in"),
    ):
        response = stranger.goto(address)
        assert response is not None and response.status == 403, address
        assert stranger.inner_text("h1") == says
    assert len(served.consoles()) == 1


class _AnotherOrigin(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


def test_a_page_from_another_origin_cannot_open_the_websocket(
    serve: Callable[..., Served], profile: Callable[..., BrowserContext]
) -> None:
    served = serve()
    context = profile()
    admin = first_page(context)
    admin.goto(served.url)
    wait_screen(admin, "Networks (6)")
    # The admin's tab stays open: closing a browser's last window ends its session
    # cookies, and the cookie is what this page would ride on.
    [console] = served.consoles()

    # Another page on 127.0.0.1, in the same browser as the admin's session: cookies
    # ignore ports, so the admin's cookie goes with its websocket, and only the Origin
    # check stands between that page and a console.
    _AnotherOrigin.page = (
        "<!DOCTYPE html><body><script>"
        f"const s = new WebSocket('ws://127.0.0.1:{served.port}/ws?width=80&height=24');"
        "s.onopen = () => { document.body.dataset.result = 'opened'; };"
        "s.onclose = (e) => { document.body.dataset.result = document.body.dataset.result"
        " || 'closed ' + e.code; };"
        "</script></body>"
    ).encode()
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AnotherOrigin)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        page.wait_for_function("document.body.dataset.result !== undefined", timeout=30_000)
        assert page.evaluate("document.body.dataset.result") == "closed 1006"
    finally:
        other.shutdown()
        other.server_close()
    assert served.consoles() == [console]
    refused = f"refused a websocket from origin 'http://127.0.0.1:{other.server_address[1]}'"
    assert refused in served.messages()


def test_the_session_limit_holds_and_a_closed_tab_ends_its_console(
    serve: Callable[..., Served], profile: Callable[..., BrowserContext]
) -> None:
    served = serve("--max-sessions", "2")
    context = profile()
    first = first_page(context)
    first.goto(served.url)
    wait_screen(first, "Networks (6)")
    second = context.new_page()
    second.goto(served.base + "/")
    wait_screen(second, "Networks (6)")
    pids = served.wait_consoles(2)

    third = context.new_page()
    response = third.goto(served.base + "/")
    assert response is not None and response.status == 503
    assert "All browser consoles are in use" in third.content()
    assert "--max-sessions 2" in third.inner_text("body")
    assert len(served.consoles()) == 2

    first.close()
    wait_until(lambda: sum(alive(pid) for pid in pids) == 1, "the closed tab's console ended")
    response = third.goto(served.base + "/")
    assert response is not None and response.status == 200
    wait_screen(third, "Networks (6)")


def test_a_console_that_dies_says_so_and_starts_again(
    serve: Callable[..., Served], profile: Callable[..., BrowserContext]
) -> None:
    served = serve()
    page = first_page(profile())
    page.goto(served.url)
    wait_screen(page, "Networks (6)")
    [pid] = served.consoles()
    os.kill(pid, signal.SIGKILL)
    page.wait_for_selector("#ended-title", state="visible", timeout=30_000)
    assert page.inner_text("#ended-title") == "The console died"
    assert "killed by SIGKILL" in page.inner_text("#ended-text")

    page.click("#again")
    wait_screen(page, "Networks (6)")
    [again] = served.consoles()
    assert again != pid

    page.keyboard.press("q")
    page.wait_for_selector("body[data-ended='4000']", timeout=30_000)
    assert page.inner_text("#ended-title") == "The console was closed"
