"""Console speed on a large cloud, against Textual's stock DataTable in the same run.

    python bench/bench_tui.py            # the /16 figures and the 1,000,000-address memory
    python bench/bench_tui.py --quick    # skip the 1,000,000-address part

Figures (each the median of a few runs, headless, 120x40):
  * first screen: from starting the app to the networks table drawn with its rows;
  * fixed-IP view: from Enter on a fully allocated /16 to its first rows drawn;
  * one filter keystroke: from the key to the filtered table drawn.
The baseline for each is the same rows loaded into a stock DataTable (what a console
built on it would have to do: all 65,534 rows, then all matching rows for the filter).
Peak memory: the resident set of a process that opens the console on a database holding
1,000,000 fixed IPs, opens a /16 of them and filters it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.service import NetconService  # noqa: E402
from tui.app import NetconApp  # noqa: E402
from tui.screens.resources import FIXED  # noqa: E402

SIZE = (120, 40)
BIG = "10.128.0.0/16"
FILTER_KEY = "7"


def open_service(path: Path) -> NetconService:
    return NetconService(
        db_url=f"sqlite:///{path}", settings=load_settings(paths=[], host="bench1"),
        actor="bench",
    )


def build(path: Path, networks: int) -> None:
    """``networks`` fully allocated /16s (65,536 addresses each, 65,534 usable)."""
    service = open_service(path)
    for number in range(networks):
        cidr = f"10.{128 + number}.0.0/16"
        service.create_networks(cidr, 1, 65536, manager="flat", bridge=f"brb{number}",
                                label=f"big{number}")
    with service.db.write() as session:
        # Fully allocated: every usable address handed out, with a MAC. One UPDATE, not
        # 65,534 launches: the console's cost is what is measured, not the core's.
        session.execute(
            text(
                "UPDATE fixed_ips SET allocated = 1, leased = 1, mac = "
                "printf('fa:16:3e:%02x:%02x:%02x', (id >> 16) & 255, (id >> 8) & 255, id & 255)"
                " WHERE reserved = 0"
            )
        )
    service.db.dispose()


def key(app: App[Any], name: str, character: str | None) -> None:
    """Deliver a key as the terminal driver does, without Pilot's own settling waits
    (they take longer than the work measured here)."""
    app.post_message(events.Key(name, character))


async def until(pilot: Pilot[Any], ready: Callable[[], bool]) -> None:
    """Poll until ``ready``, then paint the whole screen once, for both tables alike.

    Short sleeps rather than ``pilot.pause()``: its idle detection adds tens of
    milliseconds per call, which would swamp the console's figures.
    """
    while not ready():
        await asyncio.sleep(0.001)
    pilot.app.export_screenshot()


def run_app(app: App[Any], scenario: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await scenario(pilot)

    asyncio.run(main())


# -- the console -----------------------------------------------------------------------


def console_figures(path: Path) -> dict[str, float]:
    service = open_service(path)
    figures: dict[str, float] = {}

    async def scenario(pilot: Pilot[Any]) -> None:
        app: NetconApp = pilot.app  # type: ignore[assignment]
        main = app.main
        await until(pilot, lambda: main.table.source.total > 0)
        figures["first screen"] = time.perf_counter() - started
        await pilot.pause()
        t = time.perf_counter()
        key(app, "enter", "\r")
        await until(
            pilot,
            lambda: main.state.resource is FIXED and main.table.current_row is not None,
        )
        figures["fixed-IP view"] = time.perf_counter() - t
        assert main.table.source.total == 65536, main.table.source.total
        await pilot.press("slash")
        await pilot.pause()
        t = time.perf_counter()
        key(app, FILTER_KEY, FILTER_KEY)
        await until(
            pilot,
            lambda: main.table.source.total < 65536 and main.table.current_row is not None,
        )
        figures["filter keystroke"] = time.perf_counter() - t
        figures["filtered rows"] = main.table.source.total

    started = time.perf_counter()
    run_app(NetconApp(service, refresh_interval=0, start="networks"), scenario)
    service.db.dispose()
    return figures


# -- the baseline: the same rows in a stock DataTable -----------------------------------


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
        # Ready once the rows are in and DataTable has measured them (it does so on idle).
        await until(
            pilot,
            lambda: table.row_count == len(rows) and not table._require_update_dimensions,
        )
        figures["fixed-IP view"] = time.perf_counter() - t
        t = time.perf_counter()
        page = service.list_fixed_ips(network=BIG, search=FILTER_KEY)
        matching = [FIXED.cells(f) for f in page.rows]
        table.clear()
        table.add_rows(matching)
        await until(
            pilot,
            lambda: table.row_count == len(matching) and not table._require_update_dimensions,
        )
        figures["filter keystroke"] = time.perf_counter() - t

    started = time.perf_counter()
    run_app(StockTableApp(), scenario)
    # A stock-table console's first screen must hold the rows it opens with.
    figures["first screen"] = time.perf_counter() - started
    service.db.dispose()
    return figures


def median_of(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def memory_child(path: str) -> None:
    """Run in a fresh process: open the console over 1M addresses and report peak RSS."""
    service = open_service(Path(path))

    async def scenario(pilot: Pilot[Any]) -> None:
        main = pilot.app.main  # type: ignore[attr-defined]
        await until(pilot, lambda: main.table.source.total > 0)
        await pilot.press("enter")
        await until(pilot, lambda: main.state.resource is FIXED and main.table.source.total)
        await pilot.press("G")
        await until(pilot, lambda: main.table.current_row is not None)
        await pilot.press("slash", FILTER_KEY)
        await until(pilot, lambda: main.table.source.total < 65536)
        for view in ("fixed", "floating", "instances", "audit", "networks"):
            await pilot.press("escape", "colon", *view, "enter")
            await until(pilot, lambda: not main.loading)

    run_app(NetconApp(service, refresh_interval=0, start="networks"), scenario)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{peak_kib}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-address part")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    with tempfile.TemporaryDirectory(prefix="netcon-bench-") as directory:
        path = Path(directory) / "big.db"
        t = time.perf_counter()
        build(path, 1)
        print(f"database: one fully allocated /16 (65,536 fixed IPs), built in "
              f"{time.perf_counter() - t:.1f} s")
        console = [console_figures(path) for _ in range(args.runs)]
        stock = [datatable_figures(path) for _ in range(args.runs)]
        print(f"filter keystroke '{FILTER_KEY}' leaves {int(console[0]['filtered rows'])} rows")
        print(f"{'':22}{'console':>12}{'DataTable':>12}{'speed-up':>10}")
        for key in ("first screen", "fixed-IP view", "filter keystroke"):
            ours, theirs = median_of(console, key), median_of(stock, key)
            print(f"{key:22}{ours * 1000:10.1f}ms{theirs * 1000:10.1f}ms{theirs / ours:9.1f}x")

        if args.quick:
            return
        huge = Path(directory) / "huge.db"
        t = time.perf_counter()
        build(huge, 16)
        with open_service(huge).db.read() as session:
            count = session.execute(text("SELECT count(*) FROM fixed_ips")).scalar()
        print(f"database: {count:,} fixed IPs in 16 /16s, built in {time.perf_counter() - t:.1f} s")
        result = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(huge)],
            check=True, capture_output=True, text=True,
        )
        peak_mib = int(result.stdout.strip().splitlines()[-1]) / 1024
        print(f"peak memory of the console over {count:,} fixed IPs: {peak_mib:.0f} MB "
              f"(limit 300 MB)")


if __name__ == "__main__":
    main()
