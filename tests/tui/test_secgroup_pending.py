"""Security-group and rule rows carry `~` while any host still owes their change: this
host from its own plan, every other host from what its agent has recorded as applied.
Two hosts share the one database here; nethost2 runs a member of alpha/web."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.service import NetconService
from core.views import PlanView
from tests.tui.conftest import fixed_pending, settle
from tests.tui.test_flows import press_at_once
from tui.app import NetconApp

MakeApp = Callable[..., NetconApp]
Snap = Callable[..., bool]


def nothing_owed_here() -> PlanView:
    """This host (nethost1) has applied everything: only nethost2 owes the change."""
    return PlanView("nethost1", (), ())


def rule_owed_by_nethost2(service: NetconService) -> int:
    """A member of alpha/web on nethost2, which has applied everything up to then, and
    a rule added to alpha/web after: nethost2 owes the rule. Returns that change."""
    service.heartbeat("nethost2")
    service.launch_instance("alpha", "far1", ["web"], host="nethost2")
    launched = service.last_change
    assert launched is not None and launched.change is not None
    service.record_applied("nethost2", launched.change)
    service.add_security_group_rule("alpha", "web", "tcp", 8443, 8443, cidr="0.0.0.0/0")
    added = service.last_change
    assert added is not None and added.change is not None
    assert "nethost2" in added.hosts
    return added.change


def marked(app: NetconApp) -> list[tuple[str, ...]]:
    main = app.main
    return [row.cells for row in main.table.source.rows if main._row_pending(row)]


def detail(app: NetconApp) -> str:
    return str(app.main.query_one("#detail").render())


async def test_rows_owed_by_another_host_are_marked_until_it_applies(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    change = rule_owed_by_nethost2(demo_service)
    # nethost2 owes another change besides, which the group's rows do not wait for.
    demo_service.modify_network("10.0.1.0/24", host="nethost2")
    moved = demo_service.last_change
    assert moved is not None and moved.change is not None
    app = make_app(start="projects", pending_source=fixed_pending(nothing_owed_here()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "colon", *"secgroups", "enter", "slash", *"web", "enter")
        await settle(pilot)
        assert [(cells[0], cells[1]) for cells in marked(app)] == [("alpha", "web")]
        assert "~" in app.main.table.render_line(1).text  # the row as drawn
        text = detail(app)
        assert "pending on nethost2" in text
        assert f"change {change} not yet applied by nethost2's agent" in text
        assert str(moved.change) not in text
        assert "pending on nethost1" not in text

        press_at_once(pilot, "enter")
        await settle(pilot)
        rows = {row.cells[3]: app.main._row_pending(row) for row in app.main.table.source.rows}
        assert rows == {"80": False, "443": False, "8443": True}
        press_at_once(pilot, "end")
        await settle(pilot)
        assert "pending on nethost2" in detail(app)
        press_at_once(pilot, "home")
        await settle(pilot)
        assert "pending on" not in detail(app)  # tcp 80: every host has it

        demo_service.record_applied("nethost2", moved.change)
        press_at_once(pilot, "ctrl+r")
        await settle(pilot)
        assert marked(app) == []
        press_at_once(pilot, "end")
        await settle(pilot)
        assert "pending on" not in detail(app)
        press_at_once(pilot, "escape")
        await settle(pilot)
        assert marked(app) == []


async def test_membership_set_at_once_marks_the_groups_it_changed(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    """Setting an instance's groups in one change names the groups joined and left, so
    another host's record marks exactly those rows."""
    demo_service.heartbeat("nethost2")
    demo_service.launch_instance("alpha", "far1", ["default"], host="nethost2")
    launched = demo_service.last_change
    assert launched is not None and launched.change is not None
    demo_service.record_applied("nethost2", launched.change)
    demo_service.set_instance_security_groups("far1", ["web"])
    app = make_app(start="secgroups", pending_source=fixed_pending(nothing_owed_here()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert sorted((cells[0], cells[1]) for cells in marked(app)) == [
            ("alpha", "default"), ("alpha", "web")
        ]
        # The member itself, on nethost2, in the instances view and the group's members.
        press_at_once(pilot, "colon", *"instances", "enter")
        await settle(pilot)
        assert [cells[0] for cells in marked(app)] == ["far1"]
        press_at_once(pilot, "colon", *"secgroups", "enter", "slash", *"web", "enter", "M")
        await settle(pilot)
        assert [cells[0] for cells in marked(app)] == ["far1"]
        assert "pending on nethost2" in detail(app)


def test_snapshot_rule_owed_by_another_host(
    snap_compare: Snap, make_app: MakeApp, demo_service: NetconService
) -> None:
    rule_owed_by_nethost2(demo_service)
    app = make_app(start="secgroups", pending_source=fixed_pending(nothing_owed_here()))

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        press_at_once(pilot, "slash", *"web", "enter", "enter", "end")
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
