"""Network hosts: what each carries and what it still owes. P shows this host's plan,
A applies it; Enter lists the networks a host carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.views import HostView
from tui.views.base import Column, Drill, RowAction, ViewSpec, lines, text

if TYPE_CHECKING:
    from textual.screen import Screen

    from core.service.api import NetconAPI


def _plan(api: NetconAPI, h: HostView, can_apply: bool) -> Callable[[], Screen[object]]:
    plan = api.host_plan_view()

    def show() -> Screen[object]:
        from tui.screens.plan import PlanScreen

        return PlanScreen(api, plan, can_apply)

    return show


HOSTS: ViewSpec[HostView] = ViewSpec(
    name="hosts",
    title="Hosts",
    aliases=("hosts", "host", "nodes"),
    noun=("host", "hosts"),
    columns=(
        Column("name", "Name", 14),
        Column("role", "Role", 8, priority=3),
        Column("alive", "Alive", 5, priority=1),
        Column("networks", "Nets", 5, numeric=True, priority=2),
        Column("floating", "FIPs", 5, numeric=True, priority=2),
        Column("pending", "Pending", 7, numeric=True, priority=1),
        Column("heartbeat", "Heartbeat", 19, priority=4, min_width=19),
    ),
    cells=lambda h: (
        h.name,
        h.role,
        text(h.alive),
        str(h.networks),
        str(h.floating_ips),
        "?",  # filled in from what the host still owes
        text(h.last_heartbeat),
    ),
    key=lambda h: h.name,
    detail=lambda h: lines(
        [
            ("host", h.name),
            ("role", h.role),
            ("alive", h.alive),
            ("heartbeat", h.last_heartbeat),
            ("networks", h.networks),
            ("floating IPs", h.floating_ips),
        ]
    ),
    fetch=lambda api, scope: api.list_hosts(),
    drill=lambda h: Drill("networks", {"host": h.name}, h.name),
    empty="No network hosts yet: a host is recorded when it first applies (A here)",
    host=lambda h: h.name,
    pending_column=5,
    whole_plan=True,
    actions=(
        RowAction(
            "host.plan", "P", "Plan", footer=1, mutating=False, host_change=False,
            this_host_only=True, open=lambda api, h: _plan(api, h, False),
        ),
        RowAction(
            "host.apply", "A", "Apply", footer=2, host_change=False,
            this_host_only=True, open=lambda api, h: _plan(api, h, True),
        ),
    ),
)
