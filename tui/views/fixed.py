"""Fixed IPs: every address of every network, paged from the database (a /16 is 65,536)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content

from core.views import FixedIPView, Page
from tui.views.base import (
    Column,
    Drill,
    Outcome,
    RowAction,
    Scope,
    Search,
    Values,
    ViewSpec,
    lines,
    text,
)

if TYPE_CHECKING:
    from core.service.api import NetconAPI


def _detail(f: FixedIPView) -> Content:
    return lines(
        [
            ("address", f.address),
            ("network", f.network),
            ("state", f.state),
            ("instance", f.instance),
            ("project", f.project),
            ("mac", f.mac),
            ("reserved", f.reserved),
            ("allocated", f.allocated),
            ("leased", f.leased),
        ]
    )


def _page(
    api: NetconAPI, scope: Scope, search: Search, offset: int, limit: int
) -> Page[FixedIPView]:
    network = scope.get("network")
    project = scope.get("project")
    return api.list_fixed_ips(
        network=network,
        project=str(project) if project else None,
        search=search.text or None,
        offset=offset,
        limit=limit,
        regex=search.regex,
        negate=search.negate,
    )


def _reserve(api: NetconAPI, f: FixedIPView, values: Values) -> Outcome:
    api.reserve_fixed_ip(f.address)
    return Outcome(f"{f.address} reserved")


def _unreserve(api: NetconAPI, f: FixedIPView, values: Values) -> Outcome:
    api.unreserve_fixed_ip(f.address)
    return Outcome(f"{f.address} unreserved")


def _refuse_reserve(f: FixedIPView) -> str | None:
    if f.state == "reserved":
        return f"{f.address} is already reserved"
    if f.state != "free":
        holder = f" by {f.instance}" if f.instance else ""
        return f"{f.address} is {f.state}{holder}: only a free address can be reserved"
    return None


FIXED: ViewSpec[FixedIPView] = ViewSpec(
    name="fixed",
    title="Fixed IPs",
    aliases=("fixed", "fixedips", "fixed-ips", "ips"),
    noun=("fixed IP", "fixed IPs"),
    columns=(
        Column("address", "Address", 15),
        Column("state", "State", 9, priority=1),
        Column("instance", "Instance", 14, priority=1, min_width=10),
        Column("project", "Project", 12, priority=2, min_width=8),
        Column("mac", "MAC", 17, priority=4, min_width=17),
        Column("network", "Network", 18, priority=3, min_width=18),
    ),
    cells=lambda f: (
        f.address, f.state, text(f.instance), text(f.project), text(f.mac), f.network
    ),
    key=lambda f: f.id,
    detail=_detail,
    fetch_page=_page,
    drill=lambda f: Drill("instances", {"instance": f.instance}, f.address)
    if f.instance
    else None,
    empty="No fixed IPs: create a network (n in :networks)",
    subjects=lambda f: (f.address,),
    actions=(
        RowAction("fixed.reserve", "r", "Reserve", footer=1, host_change=False,
                  refuse=_refuse_reserve, call=_reserve),
        RowAction(
            "fixed.unreserve", "u", "Unreserve", footer=2, host_change=False,
            refuse=lambda f: None if f.reserved else f"{f.address} is not reserved",
            call=_unreserve,
        ),
    ),
)
