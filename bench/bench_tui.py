"""Console speed and memory, each against a baseline measured in the same run.

    python bench/bench_tui.py                  # everything
    python bench/bench_tui.py --quick          # skip the 1,000,000-address memory figure
    python bench/bench_tui.py --memory-only    # only that
    python bench/bench_tui.py --hosts-only     # only the 1,000-host figures
    python bench/bench_tui.py --startup-only   # only the start-up figure

Figures (medians; nothing here asserts a time, it prints them):

* start-up: from typing `netcon` to the first screen with rows, as whole processes in
  tmux at 80x24 on the demo database, against a bare Textual app that shows one
  DataTable row, started the same way, runs interleaved. The bytecode of core/ and
  tui/ is compiled first, as installing the package compiles it. Whole-process imports
  of what the console loads before its first rows, and of what the bare app loads,
  explain where the time goes.
* view switch and action: in the console (headless, 80x24), from the key to the
  screen showing the result: `:view` Enter until the new view's rows are drawn; for an
  action, from the last key (Enter in a form, `y` in a confirmation, the action's key)
  until the dialog is gone and the row shows the change. On the demo database, then on
  the demo database plus a fully allocated /16 (65,536 fixed IPs).
* a burst of 50 keys: a filter, a drill-down, a view switch, a form filled (a typo
  mended with Backspace) and submitted, all handed to the console at once, as a fast
  typist or a laggy SSH link delivers them, from the first key until the screen shows
  the final state (the new project among the projects, the form gone); against a bare
  Textual app handed 50 letters at once until its Input shows them all. The target is
  300 ms on the demo database.
* big views against Textual's stock DataTable holding the same rows: the /16's fixed
  IPs opened, and one filter keystroke.
* a thousand network hosts (issue 25): the demo database plus 1,000 hosts, each serving
  a network and owing one change to it (made through the service, as `network modify`
  makes it). `netcon host list` as a whole process (the installed command, median of
  7) against ``python3 -c "import sqlalchemy"`` in the same run (target: at most 2x);
  and the console started on its hosts view (headless, 80x24), until the rows are on
  screen and every host's pending count and marks are read (the header shows the
  count), against a bare Textual app showing the same 1,000 rows in a DataTable, from
  its start to its rows on screen (target: at most 1.5x), with the same console on the
  demo database alone (one host) beside it.
* memory: the peak resident set of a process that opens the console on 1,000,000 fixed
  IPs, opens a /16 of them, jumps to its end, filters it (a substring, negated, a
  pattern), pages through all of it, visits every view and jumps to the end of all
  1,000,000 (the target is 150 MB); beside it, the peak of a bare Textual app showing
  one DataTable row, run the same way; and the installed `netcon` itself, the same keys
  typed into it in tmux at 80x24. Each process reports its own peak (VmHWM):
  getrusage's ru_maxrss survives exec, so a child started by this bench would report
  the bench's own peak (building the database) if that was higher.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.service.demo import load_demo  # noqa: E402
from tui.app import NetconApp  # noqa: E402
from tui.views.fixed import FIXED  # noqa: E402

SIZE = (80, 24)
BIG = "10.128.0.0/16"
FILTER_KEY = "7"
NETCON = Path(sys.executable).parent / "netcon"

BARE_APP = """
from textual.app import App
from textual.widgets import DataTable

class Bare(App):
    def compose(self):
        yield DataTable()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("CIDR", "VLAN")
        table.add_row("10.0.0.0/24", "100")

Bare().run()
"""


def open_service(path: Path) -> NetconService:
    return NetconService(
        db_url=f"sqlite:///{path}", settings=load_settings(paths=[], host="bench1"),
        actor="bench",
    )


def build_demo(path: Path) -> None:
    service = open_service(path)
    load_demo(service)
    service.db.dispose()


def add_big(path: Path, networks: int, first: int = 128) -> None:
    """``networks`` fully allocated /16s (65,536 addresses each, 65,534 usable)."""
    service = open_service(path)
    for number in range(networks):
        cidr = f"10.{first + number}.0.0/16"
        service.create_networks(cidr, 1, 65536, manager="flat", bridge=f"brb{number}",
                                label=f"big{number}")
    with service.db.write() as session:
        # Fully allocated: every usable address handed out, with a MAC. One UPDATE, not
        # 65,534 launches: the console's cost is what is measured, not the core's.
        session.execute(
            text(
                "UPDATE fixed_ips SET allocated = 1, leased = 1, mac = "
                "printf('fa:16:3e:%02x:%02x:%02x', (id >> 16) & 255, (id >> 8) & 255, id & 255)"
                " WHERE reserved = 0 AND instance_id IS NULL AND allocated = 0"
                # ...but one address in each /16, left free to reserve.
                " AND address NOT LIKE '%.255.254'"
                " AND network_id IN (SELECT id FROM networks WHERE label LIKE 'big%')"
            )
        )
    # As a database in use would be: its write-ahead log folded back into the file.
    with service.db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    service.db.dispose()


# -- start-up, whole processes in tmux ----------------------------------------------


# A tmux server of the bench's own, kept up by an idle session between runs (a server
# whose last session closes exits, and the next start would race its exit).
TMUX = ["tmux", "-L", f"netcon-bench-{os.getpid()}"]


def tmux_until(command: str, wanted: str, env: dict[str, str]) -> float:
    """Seconds from starting ``command`` in an 80x24 tmux window until ``wanted`` shows."""
    session = f"run-{time.monotonic_ns()}"
    started = time.perf_counter()
    subprocess.run(
        [*TMUX, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
        check=True, env=env,
    )
    try:
        deadline = started + 30
        while time.perf_counter() < deadline:
            screen = subprocess.run(
                [*TMUX, "capture-pane", "-p", "-t", session],
                capture_output=True, text=True, check=False,
            ).stdout
            if wanted in screen:
                return time.perf_counter() - started
            time.sleep(0.005)
        raise RuntimeError(f"{wanted!r} never appeared for {command}")
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", session], capture_output=True)


def whole_process(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


# What each start-up imports before its first rows: the console's lean start, and the
# bare app.
CONSOLE_IMPORTS = "import tui.start, tui.app"
BARE_IMPORTS = "import textual.app; from textual.widgets import DataTable"


def compile_bytecode() -> None:
    """Compile core/ and tui/ as installing the package does; an editable install run
    under PYTHONDONTWRITEBYTECODE would otherwise compile every module on every start."""
    for package in ("core", "tui"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def startup_figures(directory: Path, runs: int) -> None:
    if shutil.which("tmux") is None or not NETCON.exists():
        print("start-up: skipped (needs tmux and the installed netcon beside the interpreter)")
        return
    compile_bytecode()
    demo = directory / "startup.db"
    build_demo(demo)
    bare = directory / "bare.py"
    bare.write_text(BARE_APP)
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(directory / "state"),
        "XDG_CONFIG_HOME": str(directory / "config"),
        "TERM": "xterm-256color",
    }
    console, baseline, imports_console, imports_textual = [], [], [], []
    # The server takes its environment from the command that starts it.
    subprocess.run([*TMUX, "new-session", "-d", "-s", "keeper", "sleep 3600"], check=True,
                   env=env)
    load = os.getloadavg()[0]
    try:
        for _ in range(runs):  # interleaved: the machine's load hits both alike
            console.append(tmux_until(f"{NETCON} --db sqlite:///{demo}", "10.0.0.0/24", env))
            baseline.append(tmux_until(f"{sys.executable} {bare}", "10.0.0.0/24", env))
            imports_console.append(whole_process([sys.executable, "-c", CONSOLE_IMPORTS]))
            imports_textual.append(whole_process([sys.executable, "-c", BARE_IMPORTS]))
    finally:
        subprocess.run([*TMUX, "kill-server"], capture_output=True)
    load = max(load, os.getloadavg()[0])
    ours, theirs = statistics.median(console), statistics.median(baseline)
    pairs = statistics.median(a / b for a, b in zip(console, baseline, strict=True))
    check = f"{CONSOLE_IMPORTS}; import sys; print('sqlalchemy' in sys.modules)"
    eager = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"start-up to the first rows, tmux 80x24 (median of {runs}, load average up to "
          f"{load:.1f}):")
    print(f"  netcon on the demo database     {ours * 1000:8.0f} ms")
    print(f"  bare Textual app, one row       {theirs * 1000:8.0f} ms")
    print(f"  ratio                           {ours / theirs:8.2f}x  (target 1.5x)")
    print(f"  ratio, median of the pairs      {pairs:8.2f}x")
    print(f"  console's imports (process)     {statistics.median(imports_console) * 1000:8.0f} ms"
          f"  ({CONSOLE_IMPORTS}; SQLAlchemy among them: {eager})")
    print(f"  bare app's imports (process)    {statistics.median(imports_textual) * 1000:8.0f} ms")


# -- in the console: view switches and actions -----------------------------------------


def key(app: App[Any], name: str, character: str | None = None) -> None:
    """Deliver a key as the terminal driver does, without Pilot's settling waits
    (they take longer than the work measured here)."""
    app.post_message(events.Key(name, character))


async def until(pilot: Pilot[Any], ready: Callable[[], bool], limit: float = 30) -> None:
    """Poll until ``ready``, then paint the screen once. Short sleeps rather than
    ``pilot.pause()``: its idle detection adds tens of milliseconds per call."""
    deadline = time.perf_counter() + limit
    while not ready():
        if time.perf_counter() > deadline:
            raise RuntimeError("the console never showed the result")
        await asyncio.sleep(0.001)
    pilot.app.export_screenshot()


async def settled(pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def run_app(app: App[Any], scenario: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await scenario(pilot)

    asyncio.run(main())


VIEWS = {
    "projects": "projects", "networks": "networks", "fixed": "fixed", "fip": "floating",
    "vpn": "vpn", "instances": "instances", "secgroups": "secgroups", "hosts": "hosts",
    "audit": "audit",
}


def interaction_figures(path: Path, big: bool) -> dict[str, float]:
    """One pass over every view switch and the main actions; seconds each."""
    service = open_service(path)
    figures: dict[str, float] = {}

    async def scenario(pilot: Pilot[Any]) -> None:
        app: NetconApp = pilot.app  # type: ignore[assignment]
        main = app.main
        await until(pilot, lambda: main.table.source.total > 0)
        await settled(pilot)

        async def switch(word: str, view: str) -> None:
            key(app, "colon", ":")
            await until(pilot, lambda: main.query_one("#command").has_class("-open"))
            for character in word:
                key(app, character, character)
            await pilot.pause()
            started = time.perf_counter()
            key(app, "enter", "\r")
            await until(
                pilot,
                lambda: main.state.spec.name == view and not main.reading
                and main.table.current_row is not None,
            )
            figures[f"view :{word}"] = time.perf_counter() - started
            await settled(pilot)

        for word, view in VIEWS.items():
            await switch(word, view)

        async def act(name: str, keys: list[str], last: str, done: Callable[[], bool]) -> None:
            for k in keys:
                await pilot.press(k)
                await settled(pilot)
            started = time.perf_counter()
            key(app, last, last if len(last) == 1 else None)
            await until(pilot, lambda: app.screen is main and done())
            figures[name] = time.perf_counter() - started
            await settled(pilot)

        # Floating IPs: disassociate the first (confirmation, y), associate it again.
        await switch("fip", "floating")
        await act("action: disassociate (y)", ["x"], "y",
                  lambda: main.table.current_row.item.instance is None)  # type: ignore[union-attr]
        await act("action: associate (pick, Enter)", ["a", "w", "e", "b", "1"], "enter",
                  lambda: main.table.current_row.item.instance == "web1")  # type: ignore[union-attr]
        # Projects: create one from the form.
        await switch("projects", "projects")
        await act("action: new project (form, Enter)", ["n", *"zeta"], "enter",
                  lambda: main.table.source.total == 6)
        # Fixed IPs of the largest network: reserve a free address (one key).
        await switch("networks", "networks")
        await pilot.press("G" if big else "down")
        await pilot.press("enter")
        await settled(pilot)
        await pilot.press("slash", *"free", "enter")
        await settled(pilot)
        free = main.table.source.total
        # Reserved, the address leaves the list of free ones.
        await act("action: reserve (r)", [], "r", lambda: main.table.source.total == free - 1)
        key(app, "escape")  # drops the filter
        await settled(pilot)
        started = time.perf_counter()
        key(app, "escape")
        await until(pilot, lambda: main.state.spec.name == "networks" and not main.reading)
        figures["back (Esc) to networks"] = time.perf_counter() - started

    run_app(NetconApp(service, refresh_interval=0, pending_source=None), scenario)
    service.db.dispose()
    return figures


def print_interactions(demo: list[dict[str, float]], big: list[dict[str, float]]) -> None:
    print("view switches and actions, key to result on screen (median):")
    print(f"  {'':34}{'demo':>10}{'with a /16':>12}")
    for name in demo[0]:
        ours = statistics.median(run[name] for run in demo)
        large = statistics.median(run[name] for run in big)
        print(f"  {name:34}{ours * 1000:8.1f}ms{large * 1000:10.1f}ms")
    worst_demo = max(statistics.median(run[n] for run in demo) for n in demo[0])
    worst_big = max(statistics.median(run[n] for run in big) for n in big[0])
    print(f"  {'slowest':34}{worst_demo * 1000:8.1f}ms{worst_big * 1000:10.1f}ms"
          "  (targets 100 ms and 250 ms)")


# -- a burst of keys ---------------------------------------------------------------

BURST_NAME = "zeta-burst-team-abc"


def burst_keys() -> list[tuple[str, str | None]]:
    """50 keys from the networks view: a filter, a drill-down, the filter of the fixed
    IPs and back, a switch to projects, and a new project's form filled and submitted."""
    def typed(text: str) -> list[tuple[str, str | None]]:
        names = {"/": "slash", ":": "colon", ".": "full_stop", "-": "minus"}
        return [(names.get(c, c), c) for c in text]

    enter, escape = ("enter", "\r"), ("escape", "\x1b")
    keys = [*typed("/10.0.1"), enter, enter, *typed("/free"), enter, escape, escape]
    keys += [*typed(":projects"), enter, ("n", "n")]
    keys += [*typed(BURST_NAME + "x"), ("backspace", None)]
    keys += [enter]
    assert len(keys) == 50, len(keys)
    return keys


def burst_figure(path: Path) -> float:
    """Seconds from handing the console 50 keys at once until it shows their result."""
    service = open_service(path)
    seconds = 0.0

    async def scenario(pilot: Pilot[Any]) -> None:
        nonlocal seconds
        app: NetconApp = pilot.app  # type: ignore[assignment]
        main = app.main
        await until(pilot, lambda: main.table.source.total > 0)
        await settled(pilot)

        def done() -> bool:
            source = main.table.source
            return (
                app.screen is main and main.state.spec.name == "projects"
                and not main.reading and main.table.current_row is not None
                and any(source.row(i).cells[0] == BURST_NAME for i in range(source.total))
            )

        started = time.perf_counter()
        for name, character in burst_keys():
            app.post_message(events.Key(name, character))
        await until(pilot, done)
        seconds = time.perf_counter() - started

    run_app(NetconApp(service, refresh_interval=0, pending_source=None), scenario)
    service.db.dispose()
    return seconds


class BareInputApp(App[None]):
    def compose(self) -> ComposeResult:
        from textual.widgets import Input

        yield Input()
        yield DataTable()


def bare_burst_figure() -> float:
    """Seconds for a bare Textual app to show 50 letters handed to its Input at once."""
    seconds = 0.0

    async def scenario(pilot: Pilot[Any]) -> None:
        nonlocal seconds
        from textual.widgets import Input

        field = pilot.app.query_one(Input)
        field.focus()
        await settled(pilot)
        started = time.perf_counter()
        for number in range(50):
            letter = "abcdefghij"[number % 10]
            pilot.app.post_message(events.Key(letter, letter))
        await until(pilot, lambda: len(field.value) == 50)
        seconds = time.perf_counter() - started

    run_app(BareInputApp(), scenario)
    return seconds


def print_burst(path: Path, directory: Path, runs: int) -> None:
    ours, theirs = [], []
    load = os.getloadavg()[0]
    for number in range(runs):  # interleaved: the machine's load hits both alike
        copy = directory / f"burst{number}.db"
        shutil.copy(path, copy)
        ours.append(burst_figure(copy))
        theirs.append(bare_burst_figure())
    load = max(load, os.getloadavg()[0])
    median, baseline = statistics.median(ours), statistics.median(theirs)
    print(f"a burst of 50 keys handed over at once, to the screen showing their result "
          f"(median of {runs}, load average up to {load:.1f}):")
    print(f"  netcon on the demo database     {median * 1000:8.1f} ms  (target 300 ms)")
    print(f"  bare Textual app, 50 letters    {baseline * 1000:8.1f} ms")
    print(f"  ratio                           {median / baseline:8.2f}x")


# -- big views against the stock DataTable ---------------------------------------------


def console_big_figures(path: Path) -> dict[str, float]:
    service = open_service(path)
    figures: dict[str, float] = {}

    async def scenario(pilot: Pilot[Any]) -> None:
        app: NetconApp = pilot.app  # type: ignore[assignment]
        main = app.main
        await until(pilot, lambda: main.table.source.total > 0)
        await pilot.pause()
        t = time.perf_counter()
        key(app, "enter", "\r")
        await until(
            pilot,
            lambda: main.state.spec is FIXED and main.table.current_row is not None,
        )
        figures["fixed-IP view"] = time.perf_counter() - t
        await pilot.press("slash")
        await pilot.pause()
        t = time.perf_counter()
        key(app, FILTER_KEY, FILTER_KEY)
        await until(
            pilot,
            lambda: main.table.source.total < 65536 and main.table.current_row is not None,
        )
        figures["filter keystroke"] = time.perf_counter() - t

    run_app(NetconApp(service, refresh_interval=0, pending_source=None), scenario)
    service.db.dispose()
    return figures


class StockTableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row")


def datatable_figures(path: Path) -> dict[str, float]:
    service = open_service(path)
    figures: dict[str, float] = {}
    columns = [c.label for c in FIXED.columns]

    async def scenario(pilot: Pilot[Any]) -> None:
        table = pilot.app.query_one(DataTable)
        table.add_columns(*columns)
        await pilot.pause()
        t = time.perf_counter()
        rows = [FIXED.cells(f) for f in service.list_fixed_ips(network=BIG).rows]
        table.add_rows(rows)
        await until(
            pilot, lambda: table.row_count == len(rows) and not table._require_update_dimensions
        )
        figures["fixed-IP view"] = time.perf_counter() - t
        t = time.perf_counter()
        matching = [FIXED.cells(f) for f in service.list_fixed_ips(network=BIG,
                                                                   search=FILTER_KEY).rows]
        table.clear()
        table.add_rows(matching)
        await until(
            pilot,
            lambda: table.row_count == len(matching) and not table._require_update_dimensions,
        )
        figures["filter keystroke"] = time.perf_counter() - t

    run_app(StockTableApp(), scenario)
    service.db.dispose()
    return figures


# -- memory --------------------------------------------------------------------------


def peak_kib() -> int:
    """This process's own peak resident set (not one inherited across exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(path: str) -> None:
    """In a fresh process: open the console over 1M addresses, report the peak RSS."""
    service = open_service(Path(path))

    async def scenario(pilot: Pilot[Any]) -> None:
        app: NetconApp = pilot.app  # type: ignore[assignment]
        main = app.main
        table = main.table
        await until(pilot, lambda: table.source.total > 0)
        await pilot.press("enter")
        await until(pilot, lambda: main.state.spec is FIXED and table.source.total)
        await pilot.press("G")
        await until(pilot, lambda: table.current_row is not None)
        await pilot.press("slash", FILTER_KEY)
        await until(pilot, lambda: not main.reading and table.source.total < 65536)
        await pilot.press("ctrl+u", "exclamation_mark", FILTER_KEY)
        await until(pilot, lambda: not main.reading and main.state.typed == f"!{FILTER_KEY}")
        await pilot.press("ctrl+u", *"^10", "full_stop", *"128", "full_stop", *"1", "enter")
        await until(pilot, lambda: not main.reading and table.current_row is not None)
        await pilot.press("escape")  # drops the filter
        await until(pilot, lambda: not main.reading and table.source.total == 65536)
        # Hold PageDown from the first address to the last.
        await pilot.press("g")
        while table.cursor < table.source.total - 1:
            before = table.cursor
            for _ in range(10):
                key(app, "pagedown")
            await until(
                pilot, lambda at=before: table.cursor > at and table.current_row is not None
            )
        for view in ("fixed", "floating", "instances", "audit", "hosts", "networks"):
            await pilot.press("escape", "colon", *view, "enter")
            await until(pilot, lambda: not main.reading)
            await settled(pilot)
        # And the end of every address there is.
        await pilot.press("colon", *"fixed", "enter")
        await until(pilot, lambda: not main.reading and table.source.total > 1_000_000)
        await pilot.press("G")
        await until(pilot, lambda: table.current_row is not None)

    run_app(NetconApp(service, refresh_interval=0, pending_source=None), scenario)
    print(peak_kib())


# The bare app of the start-up figure, run as the console is run above (headless, under
# Pilot, until its row is up) in a process that imports nothing of netcon.
BARE_MEMORY = BARE_APP.replace("Bare().run()", """
import asyncio

async def main():
    app = Bare()
    async with app.run_test(size=(80, 24)) as pilot:
        while app.query_one(DataTable).row_count < 1:
            await asyncio.sleep(0.001)
        await pilot.pause()
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(line.split()[1])

asyncio.run(main())
""")


def speed_figures(directory: Path, runs_asked: int) -> None:
    startup_figures(directory, runs_asked)

    demo = directory / "demo.db"
    build_demo(demo)
    big = directory / "demo-and-a-16.db"
    build_demo(big)
    add_big(big, 1)
    runs = max(3, runs_asked // 2)
    # Fresh copies per run: the actions change the database.
    demo_runs, big_runs = [], []
    for number in range(runs):
        for source, results in ((demo, demo_runs), (big, big_runs)):
            copy = directory / f"run{number}-{source.name}"
            shutil.copy(source, copy)
            results.append(interaction_figures(copy, big=source is big))
    print_interactions(demo_runs, big_runs)
    print_burst(demo, directory, runs)

    only_big = directory / "big.db"
    add_big(only_big, 1)
    console = [console_big_figures(only_big) for _ in range(3)]
    stock = [datatable_figures(only_big) for _ in range(3)]
    print("a fully allocated /16 (65,536 fixed IPs), against a stock DataTable (median of 3):")
    print(f"  {'':22}{'console':>12}{'DataTable':>12}{'speed-up':>10}")
    for figure in ("fixed-IP view", "filter keystroke"):
        ours = statistics.median(run[figure] for run in console)
        theirs = statistics.median(run[figure] for run in stock)
        print(f"  {figure:22}{ours * 1000:10.1f}ms{theirs * 1000:10.1f}ms{theirs / ours:9.1f}x")


# -- a thousand network hosts --------------------------------------------------------

HOSTS = 1000


def build_hosts(path: Path, count: int = HOSTS) -> None:
    """The demo cloud and ``count`` hosts, each with a heartbeat, a VLAN network of its
    own and one change to it that it has not applied."""
    build_demo(path)
    service = open_service(path)
    created = service.create_networks(
        "10.64.0.0/12", count, 16, 2000, 5000, manager="vlan", label="fleet",
        segmentation="vxlan",
    )
    names = [f"compute{number:04d}" for number in range(count)]
    for name in names:
        service.heartbeat(name)
    with service.db.write() as session:
        for network, name in zip(created, names, strict=True):
            session.execute(text("UPDATE networks SET host = :host WHERE id = :id"),
                            {"host": name, "id": network.id})
    for network in created:
        service.modify_network(network.id, dns1="192.0.2.53")
    with service.db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    service.db.dispose()


class BareHosts(App[None]):
    """A bare Textual app showing ``rows`` in a DataTable: the baseline."""

    def __init__(self, rows: list[tuple[str, ...]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Name", "Role", "Alive", "Nets", "FIPs", "Pending", "Heartbeat")
        table.add_rows(self.rows)


def console_hosts_seconds(path: Path) -> float:
    """From the console's start on the hosts view until its rows are on screen with
    every host's pending count and marks read."""
    from tui.pending import Pending, with_agents

    service = open_service(path)
    # This host's plan is left out (it reads the machine's kernel); what every other
    # host owes is read as the console reads it.
    source = lambda api: with_agents(api, Pending())  # noqa: E731
    app = NetconApp(service, refresh_interval=0, start="hosts", pending_source=source)
    seconds = 0.0

    async def scenario(pilot: Pilot[Any]) -> None:
        nonlocal seconds
        main = app.main
        await until(
            pilot,
            lambda: main.table.source.total > 0 and main.pending.counts is not None
            and main.table.current_row is not None,
        )
        seconds = time.perf_counter() - started

    started = time.perf_counter()
    run_app(app, scenario)
    service.db.dispose()
    return seconds


def bare_hosts_seconds(rows: list[tuple[str, ...]]) -> float:
    app = BareHosts(rows)
    seconds = 0.0

    async def scenario(pilot: Pilot[Any]) -> None:
        nonlocal seconds
        await until(pilot, lambda: app.query_one(DataTable).row_count == len(rows))
        seconds = time.perf_counter() - started

    started = time.perf_counter()
    run_app(app, scenario)
    return seconds


def hosts_figures(directory: Path, runs: int) -> None:
    fleet = directory / "fleet.db"
    build_hosts(fleet)
    alone = directory / "demo-hosts.db"
    build_demo(alone)
    service = open_service(fleet)
    listed = service.list_hosts()
    service.db.dispose()
    rows = [
        (h.name, h.role, "yes" if h.alive else "no", str(h.networks), str(h.floating_ips),
         str(h.pending), str(h.last_heartbeat))
        for h in listed
    ]
    load = os.getloadavg()[0]
    command, baseline = [], []
    if NETCON.exists():
        for _ in range(7):  # interleaved: the machine's load hits both alike
            command.append(whole_process([str(NETCON), "--db", f"sqlite:///{fleet}", "host",
                                          "list"]))
            baseline.append(whole_process([sys.executable, "-c", "import sqlalchemy"]))
    ours, theirs, small = [], [], []
    for _ in range(runs):
        ours.append(console_hosts_seconds(fleet))
        theirs.append(bare_hosts_seconds(rows))
        small.append(console_hosts_seconds(alone))
    load = max(load, os.getloadavg()[0])
    owed = sum(h.pending for h in listed)
    print(f"{len(listed)} network hosts owing {owed} change(s) (load average up to "
          f"{load:.1f}):")
    if command:
        listing, importing = statistics.median(command), statistics.median(baseline)
        print(f"  netcon host list (process, median of 7)   {listing * 1000:8.0f} ms")
        print(f"  python3 -c 'import sqlalchemy'           {importing * 1000:8.0f} ms")
        print(f"  ratio                                     {listing / importing:8.2f}x"
              "  (target 2x)")
    else:
        print("  netcon host list: skipped (needs the installed netcon beside the interpreter)")
    console, bare = statistics.median(ours), statistics.median(theirs)
    print(f"  console hosts view, rows and pending      {console * 1000:8.0f} ms"
          f"  (median of {runs})")
    print(f"  bare Textual app, the same rows           {bare * 1000:8.0f} ms")
    print(f"  ratio                                     {console / bare:8.2f}x  (target 1.5x)")
    print(f"  console hosts view, demo alone (1 host)   {statistics.median(small) * 1000:8.0f} ms")


class Pane:
    """A command in its own 80x24 tmux window, driven by keys and read from the screen."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.session = f"pane-{time.monotonic_ns()}"
        # exec: the pane's process is the command itself, whose memory is read.
        subprocess.run(
            [*TMUX, "new-session", "-d", "-s", self.session, "-x", "80", "-y", "24",
             f"exec {command}"],
            check=True, env=env,
        )
        self.pid = int(subprocess.run(
            [*TMUX, "display-message", "-p", "-t", self.session, "#{pane_pid}"],
            check=True, capture_output=True, text=True,
        ).stdout)

    def screen(self) -> str:
        return subprocess.run(
            [*TMUX, "capture-pane", "-p", "-t", self.session],
            capture_output=True, text=True, check=False,
        ).stdout

    def wait_for(self, wanted: str, limit: float = 120) -> None:
        deadline = time.monotonic() + limit
        while wanted not in self.screen():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{wanted!r} never appeared; the screen was:\n"
                                   f"{self.screen()}")
            time.sleep(0.05)

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run(
            [*TMUX, "send-keys", "-t", self.session, *(["-l"] if literal else []), *keys],
            check=True,
        )

    def peak_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def close(self) -> None:
        subprocess.run([*TMUX, "kill-session", "-t", self.session], capture_output=True)


def netcon_memory(directory: Path, huge: Path) -> float:
    """The installed `netcon` over ``huge`` in tmux, the session of memory_child typed
    at its keys; its peak RSS in MB."""
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(directory / "state"),
        "XDG_CONFIG_HOME": str(directory / "config"),
        "TERM": "xterm-256color",
    }
    subprocess.run([*TMUX, "new-session", "-d", "-s", "keeper", "sleep 3600"], check=True,
                   env=env)
    pane = Pane(f"{NETCON} --db sqlite:///{huge}", env)
    try:
        pane.wait_for("Networks (16)")
        time.sleep(1.0)  # the terminal's replies to Textual's start-up queries come first
        pane.keys("Enter")
        pane.wait_for("Fixed IPs (65536)")
        pane.keys("G")
        pane.wait_for("10.128.255.255")
        pane.keys(f"/{FILTER_KEY}", literal=True)
        pane.wait_for("match)")
        pane.keys("C-u")
        pane.keys(f"!{FILTER_KEY}", literal=True)
        pane.wait_for(f"/!{FILTER_KEY}")
        pane.keys("C-u")
        pattern = "^10\\.128\\.1"
        pane.keys(pattern, literal=True)
        pane.keys("Enter")
        pane.wait_for(f"match)  /{pattern}")
        pane.keys("Escape")
        pane.wait_for("Fixed IPs (65536)")
        pane.keys("g")
        while "10.128.255.255" not in pane.screen():  # PageDown held to the last address
            pane.keys(*["NPage"] * 50)
            time.sleep(0.1)
        for view in ("fixed", "floating", "instances", "audit", "hosts", "networks"):
            pane.keys("Escape")
            pane.keys(f":{view}", literal=True)
            pane.keys("Enter")
            time.sleep(0.5)
        pane.wait_for("Networks (16)")
        pane.keys(":fixed", literal=True)
        pane.keys("Enter")
        pane.wait_for(f"Fixed IPs ({16 * 65536})")
        pane.keys("G")
        pane.wait_for("10.143.255.255")
        return pane.peak_kib() / 1024
    finally:
        pane.close()
        subprocess.run([*TMUX, "kill-server"], capture_output=True)


def memory_figure(directory: Path) -> None:
    huge = directory / "huge.db"
    t = time.perf_counter()
    add_big(huge, 16)
    counter = open_service(huge)
    with counter.db.read() as session:
        count = session.execute(text("SELECT count(*) FROM fixed_ips")).scalar()
    counter.db.dispose()
    print(f"database: {count:,} fixed IPs in 16 /16s, built in {time.perf_counter() - t:.1f} s")
    def peak(*argv: str) -> float:
        result = subprocess.run(
            [sys.executable, *argv], check=True, capture_output=True, text=True
        )
        return int(result.stdout.strip().splitlines()[-1]) / 1024

    runs = 3
    console = [peak(__file__, "--memory-child", str(huge)) for _ in range(runs)]
    bare = [peak("-c", BARE_MEMORY) for _ in range(runs)]
    ours, theirs = statistics.median(console), statistics.median(bare)
    print(f"peak memory (VmHWM, median of {runs} processes):")
    print(f"  the console over {count:,} fixed IPs  {ours:6.0f} MB  (target under 150 MB)")
    print(f"  bare Textual app, one DataTable row   {theirs:6.0f} MB")
    print(f"  the console above the bare app        {ours - theirs:6.0f} MB")
    if shutil.which("tmux") is None or not NETCON.exists():
        print("  netcon in tmux: skipped (needs tmux and the installed netcon)")
        return
    compile_bytecode()
    whole = [netcon_memory(directory, huge) for _ in range(runs)]
    print(f"  netcon itself, the same keys in tmux  {statistics.median(whole):6.0f} MB"
          "  (the whole process: lean start, the service opened in a thread)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-address part")
    parser.add_argument("--memory-only", action="store_true", help="only the memory figure")
    parser.add_argument("--burst-only", action="store_true", help="only the burst of keys")
    parser.add_argument("--hosts-only", action="store_true", help="only the 1,000-host figures")
    parser.add_argument("--startup-only", action="store_true", help="only the start-up figure")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    with tempfile.TemporaryDirectory(prefix="netcon-bench-") as name:
        directory = Path(name)
        if args.burst_only:
            demo = directory / "demo.db"
            build_demo(demo)
            print_burst(demo, directory, args.runs)
            return
        if args.hosts_only:
            hosts_figures(directory, args.runs)
            return
        if args.startup_only:
            startup_figures(directory, args.runs)
            return
        if not args.memory_only:
            speed_figures(directory, args.runs)
            hosts_figures(directory, args.runs)
        if not args.quick:
            memory_figure(directory)


if __name__ == "__main__":
    main()
