"""A fixed demo cloud for console tests: same rows, same MACs, same timestamps each run."""

from __future__ import annotations

import asyncio
import inspect
import shutil
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from textual.pilot import Pilot
from textual.widgets import Input

from core.config import load_settings
from core.service import NetconService
from core.service.api import NetconAPI
from core.service.demo import load_demo
from core.views import PlannedOperation, PlanView
from tui.app import NetconApp
from tui.pending import Pending, with_agents

FIXED_TIME = datetime(2026, 1, 1, 12, 0, 0)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests (Pilot sessions) on a fresh event loop, without a plugin."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
DB_NAME = "demo.db"


def build_demo_database(path: Path) -> None:
    service = NetconService(
        db_url=f"sqlite:///{path}", settings=load_settings(paths=[], host="nethost1"),
        actor="admin",
    )
    load_demo(service)
    with service.db.write() as session:
        # Timestamps are the only thing the demo does not fix itself.
        session.execute(text("UPDATE audit_events SET at = :t"), {"t": FIXED_TIME})
        for table in ("projects", "networks", "instances"):
            session.execute(text(f"UPDATE {table} SET created_at = :t"), {"t": FIXED_TIME})
        session.execute(text("UPDATE hosts SET last_heartbeat = :t"), {"t": FIXED_TIME})
    with service.db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    service.db.dispose()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo-template") / DB_NAME
    build_demo_database(path)
    return path


@pytest.fixture
def demo_service(
    demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NetconService]:
    """A private copy of the demo database, opened by a relative URL so the header (which
    shows the URL) is the same in every run."""
    shutil.copy(demo_template, tmp_path / DB_NAME)
    monkeypatch.chdir(tmp_path)
    service = NetconService(
        db_url=f"sqlite:///{DB_NAME}",
        # The VPN actions keep their PKI under state_dir: a private one per test.
        settings=load_settings(paths=[], host="nethost1", state_dir=str(tmp_path / "state")),
        actor="admin",
    )
    yield service
    service.db.dispose()


def demo_plan(host: str = "nethost1") -> PlanView:
    """What the demo cloud's host still owes, as a fixed plan: a bridge and an address
    for alpha's network, and web1's floating IP (the real plan depends on the machine
    running the tests; tests/tui/test_pending_host.py reads a real one)."""
    return PlanView(
        host=host,
        operations=(
            PlannedOperation("create bridge br100", ("br100",)),
            PlannedOperation("add address 10.0.0.1/24 to br100", ("10.0.0.1", "br100")),
            PlannedOperation(
                "add NAT element 203.0.113.1 <-> 10.0.0.3", ("10.0.0.3", "203.0.113.1")
            ),
        ),
        problems=(),
    )


def fixed_pending(plan: PlanView) -> Callable[[NetconAPI], Pending]:
    """This host's plan fixed, and what every host owes read from the database as the
    console reads it."""
    return lambda api: with_agents(api, Pending(plans={plan.host: plan}))


@pytest.fixture
def make_app(demo_service: NetconService) -> Callable[..., NetconApp]:
    def make(start: str = "networks", read_only: bool = False, **options: Any) -> NetconApp:
        options.setdefault("refresh_interval", 0)
        # Pending host changes are not read unless a test asks (the real plan depends on
        # the machine running the tests).
        options.setdefault("pending_source", None)
        return NetconApp(demo_service, read_only, clock=lambda: FIXED_TIME, start=start, **options)

    return make


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until every worker is done and the screen is drawn; stop cursor blinking."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    for screen in pilot.app.screen_stack:
        for widget in screen.query(Input):
            widget.cursor_blink = False
    await pilot.pause()


def steps(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A run_before that presses ``keys`` one by one, settling after each."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run
