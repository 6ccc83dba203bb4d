"""Network hosts: what each carries and what it still owes. P shows this host's plan,
A applies it; E moves a down host's networks and floating IPs to live hosts; Enter lists
the networks a host carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core import validate
from core.views import HostView
from tui.views.base import (
    Column,
    Confirm,
    Drill,
    Field,
    Form,
    Outcome,
    RowAction,
    Situation,
    Values,
    ViewSpec,
    lines,
    text,
)

if TYPE_CHECKING:
    from textual.screen import Screen

    from core.service.api import NetconAPI


def _plan(api: NetconAPI, h: HostView, can_apply: bool) -> Callable[[], Screen[object]]:
    plan = api.host_plan_view()

    def show() -> Screen[object]:
        from tui.screens.plan import PlanScreen

        return PlanScreen(api, plan, can_apply)

    return show


def _refuse_evacuate(h: HostView) -> str | None:
    if h.alive:
        return f"{h.name} is alive: only a down host is evacuated"
    if not h.networks and not h.floating_ips and not h.multi_host_instances:
        return f"{h.name} carries no network and no floating IP: nothing to move"
    return None


def _evacuate_form(situation: Situation, h: HostView) -> Form:
    others = tuple(name for name in situation.known.hosts if name != h.name)
    return Form(
        f"Evacuate {h.name}",
        (
            Field("to", "To host", lambda value: validate.host_name("to", value),
                  optional=True, placeholder="the least loaded live hosts", choices=others),
        ),
        "Next",
        note="Its networks and their floating IPs move in one transaction; the new "
        "host's agent brings them up.",
    )


def _evacuate_confirm(h: HostView, values: Values) -> Confirm:
    to = values.optional("to")
    where = to if to else "the least loaded live hosts"
    # A multi-host network's instances are their host's to serve: they move too.
    served = f", {h.multi_host_instances} multi-host instance(s)" if h.multi_host_instances else ""
    return Confirm(
        f"Move {h.networks} network(s){served} and {h.floating_ips} floating IP(s) of {h.name} "
        f"to {where}?",
        f"{h.name} → {where}",
        "Evacuate",
    )


def _evacuate(api: NetconAPI, h: HostView, values: Values) -> Outcome:
    moved = api.evacuate_host(h.name, values.optional("to"))
    targets = sorted({host for _, host in moved.networks + moved.floating + moved.instances})
    # Which hosts still owe the move is said after it, as for every change.
    return Outcome(
        f"{len(moved.networks)} network(s) and {len(moved.floating)} floating IP(s) of "
        f"{h.name} moved to {', '.join(targets) or 'no host'}"
    )


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
        str(h.pending),  # changes not applied yet; the screen shows its latest count
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
            ("pending", f"{h.pending} change(s) not applied yet"),
            ("applied change", h.applied_change),
            ("applied at", h.applied_at),
            ("last error", h.last_error),
        ]
    ),
    fetch=lambda api, scope: api.list_hosts(),
    drill=lambda h: Drill("networks", {"host": h.name}, h.name),
    owns=lambda api, h: [
        ("networks", ", ".join(n.cidr for n in api.list_networks() if n.host == h.name)
         or "none"),
        ("floating IPs", ", ".join(f.address for f in api.list_floating_ips(host=h.name))
         or "none"),
    ],
    copy=lambda h: h.name,
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
        RowAction(
            "host.evacuate", "E", "Evacuate", host_change=False, refuse=_refuse_evacuate,
            form=_evacuate_form, confirm=_evacuate_confirm, call=_evacuate,
        ),
    ),
)
