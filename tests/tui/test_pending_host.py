"""Honest host state against a real host: a network host namespace made by the test, its
plan read by the console as the admin works, and applied from the console.

Root only (it creates network namespaces); skipped elsewhere, as the host tests are.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Button

from tests.host.conftest import Lab
from tests.host.scenario import network_host
from tests.tui.conftest import FIXED_TIME, settle
from tests.tui.test_flows import press_at_once
from tui.app import NetconApp
from tui.screens.plan import PlanScreen
from tui.widgets.dialogs import ConfirmDialog

pytestmark = [
    pytest.mark.host,
    pytest.mark.skipif(os.geteuid() != 0, reason="creates network namespaces: needs root"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("ip", "nft", "dnsmasq")),
        reason="needs iproute2, nftables and dnsmasq",
    ),
]

FLOATING = "203.0.113.10"
NEVER_APPLIED = "203.0.113.11"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    current = Lab(tmp_path)
    try:
        yield current
    finally:
        current.teardown()


def test_console_shows_what_the_host_still_owes(lab: Lab, tmp_path: Path) -> None:
    # Synchronous: the host layer's netlink runs an event loop of its own, so the set-up
    # happens outside the console's loop (the console reads the host in workers).
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.30.0.0/24", 1, 256)
    service.launch_instance("alpha", "vm1")
    service.launch_instance("alpha", "vm2")
    service.create_floating_range("nethost", "203.0.113.10-203.0.113.11")
    service.allocate_floating_ip("alpha")
    service.associate_floating_ip(FLOATING, "vm1")
    host.sync.sync()
    service.record_applied("nethost", service.pending_for("nethost").latest)
    assert not host.sync.plan().operations
    # Associated in the database only, not applied yet: taking it back owes the host
    # nothing more (the association itself stays owed until an apply).
    service.allocate_floating_ip("alpha")
    service.associate_floating_ip(NEVER_APPLIED, "vm2")

    app = NetconApp(service, clock=lambda: FIXED_TIME, refresh_interval=0, start="floating")
    asyncio.run(_drive(app))
    assert not host.sync.plan().operations
    # An apply from the console is recorded as an apply, never as a heartbeat.
    listed = next(h for h in service.list_hosts() if h.name == "nethost")
    assert listed.applied_at is not None and listed.pending == 0
    assert listed.last_heartbeat is None and not listed.alive


async def _drive(app: NetconApp) -> None:
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        main = app.main
        assert "nethost ~1 pending" in str(main.query_one("#header").render())

        # The one the host never had: saved, and nothing pending anywhere.
        press_at_once(pilot, "slash", *NEVER_APPLIED, "enter", "x", "y")
        await settle(pilot)
        assert str(list(app._notifications)[-1].message) == (
            f"{NEVER_APPLIED} disassociated from vm2 — saved"
        )
        assert "nethost ~1 pending" in str(main.query_one("#header").render())
        press_at_once(pilot, "escape")
        await settle(pilot)

        press_at_once(pilot, "slash", *FLOATING, "enter", "x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        press_at_once(pilot, "y")
        await settle(pilot)
        # Saved, not done: the NAT element is still in the host's table.
        assert str(list(app._notifications)[-1].message) == (
            f"{FLOATING} disassociated from vm1 — saved; pending on nethost"
        )
        header = str(main.query_one("#header").render())
        # Two changes owed, as `netcon host list` counts them.
        assert "nethost ~2 pending" in header, header
        marked = [row.cells[0] for row in main.table.source.rows if main._row_pending(row)]
        assert marked == [FLOATING]
        detail = str(main.query_one("#detail").render())
        assert f"delete NAT element {FLOATING}" in detail

        # Apply from the console: the plan, `y`, and then the plan as it is now.
        press_at_once(pilot, "colon", *"hosts", "enter")
        await settle(pilot)
        assert main.table.current_row is not None
        assert main.table.current_row.cells[5] == "2"
        press_at_once(pilot, "A")
        await settle(pilot)
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        apply = plan.query_one("#apply", Button)
        assert str(apply.label) == "Apply 2 on nethost"
        press_at_once(pilot, "y")
        await settle(pilot)
        assert app.screen is plan and not plan.query("#apply")
        shown = str(plan.query_one("#plan-operations Static").render())
        assert "nothing to change" in shown
        assert "applied 2 operation(s) on nethost" in str(
            plan.query_one("#plan-status").render()
        )
        press_at_once(pilot, "n")
        await settle(pilot)
        assert app.screen is main
        assert "nethost applied" in str(main.query_one("#header").render())
        assert main.table.current_row is not None
        assert main.table.current_row.cells[5] == "0"
        assert main.table.current_row.cells[2] == "no"  # applied, but no agent beats


def test_an_apply_that_holds_a_network_back_shows_what_is_left(
    lab: Lab, tmp_path: Path
) -> None:
    """18 and 12: a network this kernel cannot build (802.1Q) waits while the console's
    apply brings in the rest; the screen then shows the plan as it is now, with the
    problem that held the network back, and says what was applied: no refusal."""
    from core.linux.netlink import kernel_has_8021q

    if kernel_has_8021q():
        pytest.skip("this kernel supports 802.1Q: nothing is held back")
    host = network_host(lab, tmp_path, segmentation="vlan")
    service = host.service
    service.create_project("alpha")
    service.create_project("beta")
    service.create_networks("10.62.0.0/24", 1, 256)  # 802.1Q, as segmentation says
    service.create_networks("10.63.0.0/24", 1, 256, 101, 1001, segmentation="vxlan")
    service.launch_instance("alpha", "vm1")
    service.launch_instance("beta", "vm2")
    held = service.get_network("10.62.0.0/24")
    built = service.get_network("10.63.0.0/24")
    owed = service.owed("nethost").changes
    still_owed = [
        c.change for c in owed if c.scope is not None and held.id in c.scope.network_ids
    ]
    assert 0 < len(still_owed) < len(owed)
    app = NetconApp(service, clock=lambda: FIXED_TIME, refresh_interval=0, start="hosts")
    asyncio.run(_apply_partly(app, len(owed), len(still_owed)))
    links = host.layer.observe().links
    assert built.bridge in links and held.bridge not in links
    plan = host.sync.plan()
    assert plan.partial and not plan.operations
    # 10: what went in is owed no more, what was held back still is, in `host list` too.
    assert list(service.pending_for("nethost").changes) == still_owed
    listed = next(h for h in service.list_hosts() if h.name == "nethost")
    assert listed.pending == len(still_owed)


async def _apply_partly(app: NetconApp, owed: int, still_owed: int) -> None:
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        main = app.main
        assert f"nethost ~{owed} pending" in str(main.query_one("#header").render())
        assert main.table.current_row is not None
        assert main.table.current_row.cells[5] == str(owed)
        press_at_once(pilot, "A")
        await settle(pilot)
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        operations = len(plan.plan.operations)
        press_at_once(pilot, "y")
        await settle(pilot)
        assert app.screen is plan and not plan.query("#apply")
        status = str(plan.query_one("#plan-status").render())
        assert f"applied {operations} operation(s) on nethost; held back: 1 problem" in status
        assert "refused" not in status
        shown = str(plan.query_one("#plan-operations Static").render())
        assert "10.62.0.0/24: this kernel has no 802.1Q VLAN support" in shown
        assert "nothing else to change" in shown
        press_at_once(pilot, "n")
        await settle(pilot)
        assert app.screen is main
        header = str(main.query_one("#header").render())
        assert f"nethost ~{still_owed} pending" in header, header
        assert main.table.current_row is not None
        assert main.table.current_row.cells[5] == str(still_owed)
        # The network held back is still owed: marked, and its detail says why.
        press_at_once(pilot, "colon", *"networks", "enter", "slash", *"10.62", "enter")
        await settle(pilot)
        row = main.table.current_row
        assert row is not None and row.cells[0] == "10.62.0.0/24"
        assert main._row_pending(row)
        detail = str(main.query_one("#detail").render())
        assert "pending on nethost  held back" in detail, detail
        assert "✗ network 10.62.0.0/24: this kernel has no 802.1Q" in detail
        assert "applied on" not in detail
        # And so are its instances: vm1 is on it, vm2 on the network that went in.
        press_at_once(pilot, "escape", "colon", *"instances", "enter")
        await settle(pilot)
        rows = {row.cells[0]: row for row in main.table.source.rows}
        assert main._row_pending(rows["vm1"]) and not main._row_pending(rows["vm2"])
