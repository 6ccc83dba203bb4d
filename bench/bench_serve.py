"""The console in a browser (`netcon serve`), against the console in tmux, same run.

    python bench/bench_serve.py              # needs chromium, tmux, Playwright for Python
    python bench/bench_serve.py --runs 5 --consoles 10 --keys 20

Figures (medians and 90th percentiles; nothing here asserts a time, it prints them):

* first rows: from opening the URL (`netcon serve --token-file`, already running, a
  fresh browser context each run) to the networks view's rows in the page's terminal,
  against `netcon` started in tmux at the same size until the same rows are on its
  screen. Whole processes both: the browser's console is started by the websocket.
  Target: at most 2x.
* ten at once: that many browser consoles open together; each presses Down and Up in
  turn, all pages at the same time, and the page measures from the key to the first
  frame xterm.js draws with the moved cursor. Beside it, the same keys in the console
  in tmux (from send-keys to capture-pane showing the change), the CPU the consoles,
  Chromium and netcon serve used meanwhile (and the console's CPU per key, in a
  browser and in tmux), and each console's peak memory (VmHWM), against the console's
  target of 150 MB. Target: 150 ms at the 90th percentile.
* the same keys over that many bare websockets at once, timed from the key written to
  the first frame showing the moved cursor: the server's side alone, as when the
  browsers run on other machines rather than on the network host's own cores; and the
  frames and bytes a key costs until the move shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from playwright.async_api import Browser, Page, async_playwright  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.service.demo import load_demo  # noqa: E402
from tests.serving import Served, children, environment  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MEMORY_TARGET_MB = 150
FIRST_ROWS = "10.0.0.0/24"

# Catches textual.js's terminal as it is built (the page keeps it to itself), and
# times keys: from a key down to the first frame drawn whose detail line differs.
INSTRUMENT = """
window.__terminals = [];
window.__latencies = [];
Object.defineProperty(Object.prototype, "fitAddon", {
  configurable: true,
  set(value) {
    window.__terminals.push(this);
    Object.defineProperty(this, "fitAddon", {
      value, writable: true, configurable: true, enumerable: true,
    });
  },
});
window.__screen = () => {
  const t = window.__terminals[0] && window.__terminals[0].terminal;
  if (!t) return "";
  const b = t.buffer.active, lines = [];
  for (let y = 0; y < t.rows; y++) lines.push(b.getLine(b.viewportY + y).translateToString(true));
  return lines.join("\\n");
};
window.__detail = () => {
  const line = window.__screen().split("\\n").find((l) => l.startsWith(" network "));
  return line || "";
};
document.addEventListener("keydown", () => {
  window.__pending = {at: performance.now(), detail: window.__detail()};
  const t = window.__terminals[0].terminal;
  if (!window.__watching) {
    window.__watching = true;
    t.onRender(() => {
      const p = window.__pending;
      if (p && window.__detail() !== p.detail) {
        window.__latencies.push(performance.now() - p.at);
        window.__pending = null;
      }
    });
  }
}, true);
"""


def build_cloud(directory: Path) -> str:
    url = f"sqlite:///{directory / 'cloud.db'}"
    service = NetconService(url, load_settings(paths=[], host="nethost1"))
    load_demo(service)
    service.db.dispose()
    return url


# -- tmux ------------------------------------------------------------------------------


class Tmux:
    def __init__(self, env: dict[str, str]) -> None:
        self.command = ["tmux", "-L", f"nc-bench-serve-{os.getpid()}"]
        self.env = env
        subprocess.run([*self.command, "new-session", "-d", "-s", "keeper", "sleep 3600"],
                       check=True, env=env)

    def screen(self, session: str) -> str:
        return subprocess.run(
            [*self.command, "capture-pane", "-p", "-t", session],
            capture_output=True, text=True, env=self.env,
        ).stdout

    def start(self, session: str, db: str, size: tuple[int, int]) -> float:
        """Seconds from starting `netcon` to its first rows on the screen."""
        started = time.perf_counter()
        subprocess.run(
            [*self.command, "new-session", "-d", "-s", session, "-x", str(size[0]), "-y",
             str(size[1]), "-e", f"XDG_CONFIG_HOME={self.env['XDG_CONFIG_HOME']}",
             "-e", f"XDG_STATE_HOME={self.env['XDG_STATE_HOME']}",
             f"{sys.executable} -m tui --db {db}"],
            check=True, env={**self.env, "TERM": "xterm-256color"},
        )
        while FIRST_ROWS not in self.screen(session):
            time.sleep(0.002)
        return time.perf_counter() - started

    def key_latency(self, session: str, key: str) -> float:
        before = self.detail(session)
        started = time.perf_counter()
        subprocess.run([*self.command, "send-keys", "-t", session, key], env=self.env)
        while self.detail(session) == before:
            time.sleep(0.001)
        return time.perf_counter() - started

    def detail(self, session: str) -> str:
        return next(
            (line for line in self.screen(session).splitlines() if line.startswith(" network ")),
            "",
        )

    def pids(self, session: str) -> list[int]:
        """The console's process in ``session`` (and any child of the pane's shell)."""
        pane = int(subprocess.run(
            [*self.command, "display-message", "-p", "-t", session, "#{pane_pid}"],
            capture_output=True, text=True, env=self.env, check=True,
        ).stdout)
        return [pane, *children(pane)]

    def kill(self, session: str) -> None:
        subprocess.run([*self.command, "kill-session", "-t", session], env=self.env)

    def close(self) -> None:
        subprocess.run([*self.command, "kill-server"], capture_output=True, env=self.env)


# -- the browser -----------------------------------------------------------------------


async def open_console(browser: Browser, url: str) -> tuple[Page, float]:
    """A fresh context opens ``url``; seconds until the first rows are in its terminal."""
    context = await browser.new_context(viewport={"width": 1000, "height": 600})
    await context.add_init_script(INSTRUMENT)
    page = await context.new_page()
    started = time.perf_counter()
    await page.goto(url)
    deadline = time.monotonic() + 120
    while FIRST_ROWS not in await page.evaluate("() => window.__screen ? window.__screen() : ''"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no rows in the page: {await page.inner_text('body')}")
        await asyncio.sleep(0.002)
    return page, time.perf_counter() - started


async def press_keys(page: Page, count: int) -> list[float]:
    for index in range(count):
        await page.keyboard.press("ArrowDown" if index % 2 == 0 else "ArrowUp")
        deadline = time.monotonic() + 10
        while len(await page.evaluate("() => window.__latencies")) <= index:
            if time.monotonic() > deadline:
                raise RuntimeError("a key never moved the cursor")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    return [value / 1000 for value in await page.evaluate("() => window.__latencies")]


ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]")
# What the detail pane says once the cursor is on the second row, and on the first.
MOVED = (b"(id 2,", b"(id 1,")


async def socket_keys(
    served: Served, url: str, count: int, sent: list[tuple[int, int]]
) -> list[float]:
    """One console over a bare websocket, as the server sees a browser on another
    machine: from writing a key to the first frame that shows the moved cursor; the
    frames and bytes each key took go to ``sent``."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as client:
        async with client.get(url) as response:
            page = await response.text()
        match = re.search(r'data-session-websocket-url="([^"]+)"', page)
        assert match, page
        socket = await client.ws_connect(f"{match.group(1)}?width=111&height=28",
                                         origin=served.base)
        await frames_until(socket, b"10.0.0.0/24")
        latencies = []
        for index in range(count):
            key, shown = ("\x1b[B", MOVED[0]) if index % 2 == 0 else ("\x1b[A", MOVED[1])
            started = time.perf_counter()
            await socket.send_json(["stdin", key])
            frames, size = await frames_until(socket, shown)
            latencies.append(time.perf_counter() - started)
            sent.append((frames, size))
            await asyncio.sleep(0.05)
        await socket.close()
        return latencies


async def frames_until(socket: aiohttp.ClientWebSocketResponse, text: bytes) -> tuple[int, int]:
    """Read frames until one shows ``text``: how many, and their bytes."""
    seen = b""
    frames = size = 0
    while text not in seen:
        message = await asyncio.wait_for(socket.receive(), 30)
        if message.type != aiohttp.WSMsgType.BINARY:
            raise RuntimeError(f"the console's socket closed: {message}")
        frames, size = frames + 1, size + len(message.data)
        seen = ESCAPES.sub(b"", message.data)
    return frames, size


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def chromium_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(CHROMIUM.encode()) or b"/chromium/" in command.split(b"\0")[0]:
                found.append(int(entry.name))
    return found


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def wait_for_consoles(served: Served, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(served.consoles()) != count and time.monotonic() < deadline:
        time.sleep(0.05)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def measure(args: argparse.Namespace, directory: Path) -> None:
    db = build_cloud(directory)
    env = environment(directory)
    token = directory / "token"
    token.write_text(os.urandom(32).hex() + "\n")
    token.chmod(0o600)
    served = Served(
        # Room for a console that is still ending when the next run opens the page.
        directory, db, "--token-file", str(token), "--max-sessions", str(args.consoles + 2),
        env=env,
    )
    url = served.base + "/?token=" + token.read_text().strip()
    tmux = Tmux(env)
    try:
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=ARGS
            )
            page, _ = await open_console(browser, url)  # warm: bytecode, page cache
            size = await page.evaluate(
                "() => [window.__terminals[0].terminal.cols, window.__terminals[0].terminal.rows]"
            )
            await page.context.close()
            tmux.start("warm", db, tuple(size))
            tmux.kill("warm")

            web: list[float] = []
            terminal: list[float] = []
            for run in range(args.runs):
                page, seconds = await open_console(browser, url)
                web.append(seconds)
                await page.context.close()
                terminal.append(tmux.start(f"start{run}", db, tuple(size)))
                tmux.kill(f"start{run}")
            ours, theirs = statistics.median(web), statistics.median(terminal)
            print(f"first rows, median of {args.runs} ({size[0]}x{size[1]}):")
            print(f"  one-time URL to rows in the browser   {ours * 1000:7.0f} ms")
            print(f"  netcon started in tmux                {theirs * 1000:7.0f} ms")
            print(f"  ratio                                 {ours / theirs:7.2f}x  (target 2x)")

            tmux.start("keys", db, tuple(size))
            baseline = [
                tmux.key_latency("keys", "Down" if index % 2 == 0 else "Up")
                for index in range(args.keys)
            ]
            # CPU per key on keys of their own, once the service the console opens
            # after its first rows is open: that start-up is not a key's cost.
            time.sleep(2)
            tmux_pids = tmux.pids("keys")
            tmux_before = cpu_seconds(tmux_pids)
            for index in range(args.keys):
                tmux.key_latency("keys", "Down" if index % 2 == 0 else "Up")
            tmux_per_key = (cpu_seconds(tmux_pids) - tmux_before) / args.keys
            tmux.kill("keys")

            pages = [(await open_console(browser, url))[0] for _ in range(args.consoles)]
            pids = served.wait_consoles(args.consoles)
            browsers = chromium_pids()
            cpu_before = cpu_seconds(pids), cpu_seconds(browsers), cpu_seconds([served.pid])
            started = time.perf_counter()
            results = await asyncio.gather(*(press_keys(page, args.keys) for page in pages))
            wall = time.perf_counter() - started
            cpu_after = cpu_seconds(pids), cpu_seconds(browsers), cpu_seconds([served.pid])
            latencies = [value for result in results for value in result]
            print(f"{args.consoles} browser consoles at once, {args.keys} keys each, "
                  "all pages together:")
            median = statistics.median(latencies)
            print(f"  key to screen, median                 {median * 1000:7.0f} ms")
            p90 = percentile(latencies, 0.9)
            print(f"  key to screen, 90th percentile        {p90 * 1000:7.0f} ms  (target 150 ms)")
            tmux_p90 = percentile(baseline, 0.9)
            print(f"  one console in tmux, 90th percentile  {tmux_p90 * 1000:7.0f} ms")
            print(f"  ratio at the 90th percentile          {p90 / tmux_p90:7.2f}x")
            used = [after - before for before, after in zip(cpu_before, cpu_after, strict=True)]
            print(f"  CPU over the {wall:.1f} s of keys: consoles {used[0]:.1f} s, "
                  f"Chromium {used[1]:.1f} s, netcon serve {used[2]:.1f} s "
                  f"({os.cpu_count()} cores)")
            per_key = used[0] / len(latencies)
            print(f"  console CPU per key: in a browser {per_key * 1000:.1f} ms, "
                  f"in tmux {tmux_per_key * 1000:.1f} ms")
            peaks = [peak_mb(pid) for pid in pids]
            print(f"  peak memory per console (VmHWM)       {max(peaks):7.0f} MB at most, "
                  f"{statistics.median(peaks):.0f} MB median  (target under {MEMORY_TARGET_MB} MB)")
            print(f"  netcon serve itself                   {peak_mb(served.pid):7.0f} MB")
            for page in pages:
                await page.context.close()
            wait_for_consoles(served, 0)
            sent: list[tuple[int, int]] = []
            sockets = await asyncio.gather(
                *(socket_keys(served, url, args.keys, sent) for _ in range(args.consoles))
            )
            bare = [value for result in sockets for value in result]
            print(f"the same over {args.consoles} bare websockets at once (browsers elsewhere):")
            print(f"  key to screen, median                 "
                  f"{statistics.median(bare) * 1000:7.0f} ms")
            print(f"  key to screen, 90th percentile        "
                  f"{percentile(bare, 0.9) * 1000:7.0f} ms  (target 150 ms)")
            print(f"  sent per key until the move shows     "
                  f"{statistics.mean(f for f, _ in sent):7.1f} frames, "
                  f"{statistics.mean(b for _, b in sent):.0f} bytes")
            await browser.close()
    finally:
        tmux.close()
        served.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--consoles", type=int, default=10)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nc-bench-serve-") as directory:
        asyncio.run(measure(args, Path(directory)))


if __name__ == "__main__":
    main()
