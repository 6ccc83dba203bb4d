"""Regenerate screenshots/: each main view of the console and its main dialogs.

    python scripts/screenshots.py [--size 80x24]

Runs the console headless on a fresh demo database, with a fixed clock for both the
database and the console, and saves SVG images (open them in a browser; README.md
embeds them). Running it again gives the same files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import Input  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.service.demo import load_demo  # noqa: E402
from tui.app import NetconApp  # noqa: E402

OUT = ROOT / "screenshots"
CLOCK = datetime(2026, 1, 1, 12, 0)
SHOTS: list[tuple[str, tuple[str, ...]]] = [
    ("projects", ("colon", *"projects", "enter")),
    ("networks", ("colon", *"networks", "enter")),
    ("fixed-ips", ("colon", *"networks", "enter", "enter")),
    ("floating-ips", ("colon", *"fip", "enter")),
    ("associate-floating-ip", ("colon", *"fip", "enter", "down", "down", "a")),
    ("bulk-disassociate", ("colon", *"fip", "enter", "space", "space", "x")),
    ("new-network-refused", ("colon", *"networks", "enter", "n", *"10.0.0.0/24", "enter")),
    ("vpns", ("colon", *"vpn", "enter")),
    ("instances", ("colon", *"instances", "enter")),
    ("security-groups", ("colon", *"secgroups", "enter", "slash", *"web", "enter")),
    ("rules", ("colon", *"secgroups", "enter", "slash", *"web", "enter", "enter")),
    ("instance-groups", ("colon", *"instances", "enter", "slash", *"db1", "enter", "g")),
    ("group-members", ("colon", *"secgroups", "enter", "slash", *"web", "enter", "M")),
    ("describe-network", ("colon", *"networks", "enter", "d")),
    ("hosts", ("colon", *"hosts", "enter")),
    ("audit", ("colon", *"audit", "enter")),
    ("command-line", ("colon", *"se", "tab")),
    ("help", ("question_mark",)),
]


async def settle(pilot: Pilot[None]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


async def shoot(
    service: NetconService, name: str, keys: tuple[str, ...], size: tuple[int, int]
) -> Path:
    # Pending host changes are not read: they would describe the machine taking the
    # screenshots.
    app = NetconApp(service, clock=lambda: CLOCK, refresh_interval=0, pending_source=None)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        path = app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    return Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="80x24", help="terminal size, COLSxROWS")
    args = parser.parse_args()
    columns, rows = (int(part) for part in args.size.split("x"))
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="netcon-shots-") as directory:
        os.chdir(directory)  # a relative database URL keeps machine paths out of the images
        service = NetconService(
            db_url="sqlite:///demo.db", settings=load_settings(paths=[], host="nethost1"),
            actor="admin", clock=lambda: CLOCK,
        )
        load_demo(service)
        for name, keys in SHOTS:
            print(asyncio.run(shoot(service, name, keys, (columns, rows))).relative_to(ROOT))
        service.db.dispose()


if __name__ == "__main__":
    main()
