"""`netcon`'s start: the first rows are read the lean way and drawn before the service
is open; the lean read refuses what the service would not open as it is, and then the
command line opens the console the ordinary way."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from textual.message import Message

from core.errors import DatabaseError
from core.service import NetconService
from core.service.api import NetconAPI
from core.service.demo import load_demo
from core.store.listing import LeanListing, read_networks, sqlite_file
from core.store.rules import HEAD_REVISION
from tests.support import make_service
from tests.tui.conftest import DB_NAME, FIXED_TIME, demo_plan, fixed_pending, settle
from tests.tui.test_flows import messages, press_at_once
from tui import start
from tui.app import NetconApp
from tui.calls import Opening
from tui.launch import console_words
from tui.widgets.virtual_table import VirtualTable


def lean(service: NetconService) -> LeanListing:
    listing = read_networks(service.db.url, service.settings.physical_mtu)
    assert listing is not None
    return listing


def digest(path: Path) -> str:
    files = sorted(path.parent.glob(path.name + "*"))
    return "".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)


# -- the lean read is the service's listing ------------------------------------------


def test_the_lean_read_is_the_services_listing(demo_service: NetconService) -> None:
    listing = lean(demo_service)
    assert listing.networks == demo_service.list_networks()
    assert listing.url == demo_service.db.safe_url
    assert listing.writable == demo_service.db.writable()


def test_the_lean_read_sees_what_changes_a_listing(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    load_demo(service)
    # Own MTUs, a VXLAN segment, reserved and leased addresses, a network with none.
    service.create_networks("10.99.0.0/24", 1, 256, manager="flat", bridge="brx", label="x")
    service.create_networks("10.98.0.0/24", 1, 256, segmentation="vxlan", label="vx")
    first = service.list_networks()[0]
    service.modify_network(first.cidr, mtu=1400, dhcp_lease_time=600)
    service.reserve_fixed_ip("10.99.0.10")
    with service.db.write() as connection:
        connection.exec_driver_sql("UPDATE fixed_ips SET leased = 1 WHERE address = '10.99.0.11'")
        connection.exec_driver_sql(
            "DELETE FROM fixed_ips WHERE network_id = "
            "(SELECT id FROM networks WHERE cidr = '10.98.0.0/24')"
        )
    assert lean(service).networks == service.list_networks()
    # The service's other readers of the same SQL agree with it.
    for network in service.list_networks():
        assert service.get_network(network.cidr) == network
    alpha = service.list_networks(project="alpha")
    assert alpha and all(n.project == "alpha" for n in alpha)


@pytest.mark.postgres
def test_the_listing_sql_reads_postgresql(pg_url: str, tmp_path: Path) -> None:
    service = make_service(tmp_path, url=pg_url)
    load_demo(service)
    made = service.create_networks("10.99.0.0/23", 2, 256, vlan_start=200, vpn_start=2000)
    assert [n.cidr for n in made] == ["10.99.0.0/24", "10.99.1.0/24"]
    assert all(n.size == 256 and n.free == n.size - n.reserved for n in made)
    listed = service.list_networks()
    assert {n.cidr for n in made} <= {n.cidr for n in listed}
    assert service.get_network(listed[0].id) == listed[0]
    # PostgreSQL is opened the ordinary way: the lean read leaves it to the service.
    assert read_networks(pg_url, 1500) is None


# -- the lean read refuses what the service would not open as it is -------------------


def _foreign(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE recipes (name TEXT)")
    connection.commit()
    connection.close()


def _revision(value: str) -> Any:
    def make(path: Path) -> None:
        service = make_service(path.parent)
        service.db.dispose()
        connection = sqlite3.connect(path)
        connection.execute("UPDATE alembic_version SET version_num = ?", (value,))
        connection.commit()
        connection.close()

    return make


CASES = {
    "missing": lambda path: None,
    "a directory": lambda path: path.mkdir(),
    "empty": lambda path: path.write_bytes(b""),
    "not SQLite": lambda path: path.write_text("name,cidr\n"),
    "another application's": _foreign,
    "behind this netcon": _revision("0001"),
    "ahead of this netcon": _revision("9999"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_lean_read_leaves_what_the_service_would_refuse_or_change(
    tmp_path: Path, case: str
) -> None:
    path = tmp_path / "netcon.db"
    CASES[case](path)
    before = digest(path) if path.is_file() else None
    names = sorted(p.name for p in tmp_path.iterdir())
    assert read_networks(f"sqlite:///{path}", 1500) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # nothing made
    if before is not None:
        assert digest(path) == before  # nothing written


def test_the_lean_read_takes_the_head_revision_only(demo_service: NetconService) -> None:
    assert demo_service.db.revision() == HEAD_REVISION
    assert lean(demo_service).networks


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////tmp/netcon.db", "sqlite:///netcon.db", "sqlite:///dir/a b.db",
        "sqlite:///x.db?mode=ro", "sqlite:///a%20b.db", "sqlite:///x#y.db", "sqlite://",
        "sqlite:///:memory:", "sqlite+pysqlite:////tmp/x.db", "sqlite://host/x.db",
        "postgresql://db/netcon", "netcon.db",
    ],
)
def test_the_lean_read_takes_plain_sqlite_urls_as_sqlalchemy_reads_them(url: str) -> None:
    path = sqlite_file(url)
    if path is None:
        return  # left to the service
    parsed = make_url(url)
    assert parsed.drivername == "sqlite" and parsed.host is None
    assert Path(str(parsed.database)) == path
    assert parsed.render_as_string(hide_password=True) == url


# -- the command line --------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "options"),
    [
        ([], (None, False)),
        (["--read-only"], (None, True)),
        (["--db", "sqlite:///a.db"], ("sqlite:///a.db", False)),
        (["--db=sqlite:///a.db", "--read-only"], ("sqlite:///a.db", True)),
        (["--db", "x", "--db", "y"], ("y", False)),
        (["network", "list"], None),
        (["--db", "x", "network", "list"], None),
        (["--db"], None),
        (["--db", "--read-only"], None),
        (["--json"], None),
        (["--lock-timeout", "5"], None),
        (["--read"], None),  # argparse's abbreviations are argparse's to read
        (["-h"], None),
        (["-"], None),
    ],
)
def test_only_the_consoles_own_options_skip_the_parser(
    words: list[str], options: tuple[str | None, bool] | None
) -> None:
    assert console_words(words) == options


def netcon(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True, text=True, cwd=cwd, timeout=60, check=False,
        env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", "TERM": "dumb"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("missing", 2, "no netcon database at"),
        ("another application's", 2, "holds tables but not netcon's"),
        ("ahead of this netcon", 1, "schema revision 9999 is unknown"),
    ],
)
def test_a_database_the_lean_read_leaves_is_refused_as_the_command_line_refuses_it(
    tmp_path: Path, case: str, status: int, words: str
) -> None:
    path = tmp_path / "netcon.db"
    CASES[case](path)
    url = f"sqlite:///{path}"
    console = netcon("--db", url, cwd=tmp_path)
    command = netcon("--db", url, "network", "list", cwd=tmp_path)
    assert console.returncode == command.returncode == status, console.stderr
    assert console.stderr == command.stderr
    lines = console.stderr.splitlines()
    assert len(lines) == 1 and words in lines[0], console.stderr


def test_a_service_that_fails_after_the_first_rows_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    service = make_service(tmp_path)
    load_demo(service)
    service.db.dispose()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # Tests have no terminal; the console runs under Textual's headless driver.
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.headless_driver:HeadlessDriver")
    ran: list[NetconApp] = []

    def run(app: NetconApp, **_: object) -> None:
        # As when the file goes away between the first rows and the service.
        ran.append(app)
        app.open_error = DatabaseError("database sqlite:///gone.db: unable to open")

    monkeypatch.setattr(NetconApp, "run", run)
    assert start.start_console(service.db.url, False) == 1
    assert ran and ran[0].context.first_rows["networks"]
    assert capsys.readouterr().err == "netcon: database sqlite:///gone.db: unable to open\n"


# -- the console before and after its service ------------------------------------------


async def until(condition: Any, limit: float = 10) -> None:
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def starting(
    service: NetconService, open_service: Callable[[], NetconAPI], **options: Any
) -> tuple[NetconApp, LeanListing]:
    """The console as `netcon` starts it: the lean read's rows, the service to come."""
    listing = lean(service)
    opening = Opening(
        open_service, service.settings, listing.url, listing.writable,
        {"networks": listing.networks},
    )  # fmt: skip
    options = {"refresh_interval": 0, "pending_source": None, **options}
    return NetconApp(opening, clock=lambda: FIXED_TIME, **options), listing


async def test_the_first_rows_are_drawn_before_the_service_is_open(
    demo_service: NetconService,
) -> None:
    release = threading.Event()
    opened: list[str] = []

    def open_service() -> NetconAPI:
        opened.append(threading.current_thread().name)
        release.wait(20)
        return demo_service

    app, listing = starting(demo_service, open_service)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            main = app.main
            source = main.table.source
            assert [source.row(i).item for i in range(source.total)] == listing.networks
            assert not app.service.ready
            header = str(main.query_one("#header").render())
            assert DB_NAME in header and "loading" not in header
            # A view switch waits for the service, then shows its rows.
            await pilot.press("colon", *"fip", "enter")
            await pilot.pause()
            assert main.state.spec.name == "floating" and main.table.source.total == 0
            release.set()
            await until(lambda: main.table.source.total == 14)
            await settle(pilot)
            assert app.service.ready and len(opened) == 1
            assert app.open_error is None
    finally:
        release.set()


async def test_a_service_that_cannot_be_opened_ends_the_console(
    demo_service: NetconService,
) -> None:
    def fail() -> NetconAPI:
        raise DatabaseError("database sqlite:///demo.db: disk I/O error")

    app, _ = starting(demo_service, fail)
    async with app.run_test(size=(80, 24)):
        await until(lambda: app.open_error is not None)
    assert isinstance(app.open_error, DatabaseError)
    assert app.return_code == 1


async def test_the_first_screen_shows_its_rows_detail_with_them(
    demo_service: NetconService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows read the lean way are set while the screen mounts; the table's Highlighted
    # message then comes after the first frame. The detail must not wait for it.
    post = VirtualTable.post_message

    def without_highlights(table: VirtualTable, message: Message) -> bool:
        return False if isinstance(message, VirtualTable.Highlighted) else post(table, message)

    monkeypatch.setattr(VirtualTable, "post_message", without_highlights)
    release = threading.Event()

    def open_service() -> NetconAPI:
        release.wait(20)
        return demo_service

    app, listing = starting(demo_service, open_service)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert not app.service.ready
            detail = str(app.main.query_one("#detail").render())
            assert listing.networks[0].cidr in detail and "manager" in detail
    finally:
        release.set()


async def test_rows_read_at_start_serve_the_first_load_only(
    demo_service: NetconService,
) -> None:
    # A console that starts elsewhere never shows the start-up rows later as current.
    app, listing = starting(demo_service, lambda: demo_service, start="projects")
    demo_service.create_networks("10.97.0.0/24", 1, 256, label="later")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.context.first_rows
        await pilot.press("colon", *"networks", "enter")
        await settle(pilot)
        main = app.main
        shown = [main.table.source.row(i).item for i in range(main.table.source.total)]
        assert shown == demo_service.list_networks() != listing.networks


# -- what the start loads before its first rows ----------------------------------------

# `netcon --db URL` run as the executable runs it, headless, until the moment the console
# opens its service (after the first frame): what it imported by then, and what it drew.
_UNTIL_FIRST_ROWS = """
import json, sys
from tui.app import NetconApp
from tui.launch import main

seen = {}

def first_frame(app):
    seen["modules"] = sorted(sys.modules)
    table = app.main.table
    seen["rows"] = [table.source.row(i).item.cidr for i in range(table.source.total)]
    seen["screen"] = app.export_screenshot()
    app.exit()

run = NetconApp.run
NetconApp._open_service = first_frame
NetconApp.run = lambda app, **_: run(app, headless=True, size=(80, 24))
status = main(["--db", sys.argv[1]])
print(json.dumps({**seen, "status": status}))
"""


def test_the_first_rows_are_drawn_without_sqlalchemy(
    demo_service: NetconService, tmp_path: Path
) -> None:
    listing = lean(demo_service)
    demo_service.db.dispose()
    result = subprocess.run(
        [sys.executable, "-c", _UNTIL_FIRST_ROWS, f"sqlite:///{tmp_path / DB_NAME}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
        env={
            **os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            # Headless, as the test has no terminal for the console to refuse to start without.
            "TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver",
        },
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 0
    assert seen["rows"] == [n.cidr for n in listing.networks]
    assert listing.networks[0].cidr in seen["screen"]
    assert [m for m in seen["modules"] if m.partition(".")[0] == "sqlalchemy"] == []
    # Nor the service, which the console opens once those rows are up.
    assert "core.service" not in seen["modules"]


def _drawn(app: NetconApp) -> list[str]:
    """The networks table as it is on screen: its header, its rows, their marks."""
    table = app.main.table
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_the_first_rows_are_drawn_as_the_service_draws_them(
    demo_service: NetconService,
) -> None:
    # The same rows, columns, order and formatting; the marks of what the hosts owe
    # come with the service, as they come after the first read of a console opened on it.
    pending = fixed_pending(demo_plan())
    release = threading.Event()

    def open_service() -> NetconAPI:
        release.wait(20)
        return demo_service

    app, _ = starting(demo_service, open_service, pending_source=pending)
    ordinary = NetconApp(
        demo_service, clock=lambda: FIXED_TIME, refresh_interval=0, pending_source=pending
    )
    async with ordinary.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        serviced = _drawn(ordinary)
        marked = sum(line[1:2] == "~" for line in serviced)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert not app.service.ready
            first = _drawn(app)
            # Before the service, nothing is said of what the hosts owe: no row is
            # marked, and the header names the host without a count.
            assert all(line[1:2] == " " for line in first)
            assert "pending" not in str(app.main.query_one("#header").render())
            release.set()
            await until(lambda: app.service.ready)
            await settle(pilot)
            assert _drawn(app) == serviced
    finally:
        release.set()
    assert marked  # the demo plan marks alpha's network
    # But for those marks, the first rows are the service's rows as drawn.
    assert [line[:1] + line[2:] for line in first] == [line[:1] + line[2:] for line in serviced]


async def test_keys_typed_before_the_service_is_open_act_in_order(
    demo_service: NetconService,
) -> None:
    # Typed in one burst on the first rows: `D` on floating IPs waits for that view (and
    # so for the service), then acts on it, never on the projects view typed after it.
    release = threading.Event()

    def open_service() -> NetconAPI:
        release.wait(20)
        return demo_service

    app, _ = starting(demo_service, open_service)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await pilot.pause()
            assert not app.service.ready
            press_at_once(pilot, "colon", *"fip", "enter", "D", "colon", *"projects", "enter")
            await pilot.pause()
            assert app.screen is app.main and app.main.state.spec.name != "projects"
            release.set()
            await until(lambda: app.main.state.spec.name == "projects")
            await settle(pilot)
            assert messages(app) == [
                "203.0.113.1 is associated with web1: disassociate it first (x)"
            ]
            assert app.screen is app.main
            assert "alpha" in {p.name for p in demo_service.list_projects()}
    finally:
        release.set()
