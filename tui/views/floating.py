"""Floating IPs: a pool the admin fills, allocated to projects, associated with instances."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.content import Content

from core import validate
from core.views import FloatingIPView
from tui.views.base import (
    Choice,
    Column,
    Confirm,
    Drill,
    Field,
    Form,
    Outcome,
    Pick,
    RowAction,
    Scope,
    Situation,
    Values,
    ViewAction,
    ViewSpec,
    lines,
    text,
)

if TYPE_CHECKING:
    from core.service.api import NetconAPI


def allocate_form(situation: Situation, project: str, pool: str) -> Form:
    default = situation.settings.default_floating_pool
    known = situation.known.pools
    pools = tuple(sorted(set(known) | {default}))
    if not pool and known and default not in known:
        pool = known[0]  # the configured default has no addresses: offer one that has
    return Form(
        "Allocate a floating IP",
        (
            Field("project", "Project", partial(validate.name, "project"), value=project,
                  choices=situation.known.projects),
            Field("pool", "Pool", partial(validate.name, "pool"), optional=True, value=pool,
                  placeholder=situation.settings.default_floating_pool, choices=pools),
        ),
        "Allocate",
    )


def allocated(api: NetconAPI, values: Values) -> Outcome:
    floating = api.allocate_floating_ip(values.text("project"), values.optional("pool"))
    return Outcome(f"{floating.address} allocated to {floating.project}")


def _detail(f: FloatingIPView) -> Content:
    return lines(
        [
            ("address", f.address),
            ("pool", f.pool),
            ("host", f"{f.host} ({f.interface})"),
            ("project", f.project),
            ("instance", f.instance),
            ("fixed IP", f.fixed_address),
            ("auto-assigned", f.auto_assigned),
        ]
    )


def _allocate(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    return allocated(api, values)


def _refuse_associate(f: FloatingIPView) -> str | None:
    if f.project is None:
        return f"{f.address} is not allocated to a project: allocate it first (n)"
    return None


def _associate_title(f: FloatingIPView) -> str:
    if f.instance is not None:
        return f"Move {f.address} from {f.instance} to another instance of {f.project}"
    return f"Associate {f.address} with an instance of {f.project}"


def _instances_for(api: NetconAPI, f: FloatingIPView) -> list[Choice]:
    choices = []
    for instance in api.list_instances(project=f.project):
        if instance.name == f.instance:
            continue  # where it is now: a move goes elsewhere
        addresses = ", ".join(a.address for a in instance.addresses) or "no address"
        taken = [a.floating for a in instance.addresses if a.floating]
        note = f"  (has {', '.join(taken)})" if taken else ""
        choices.append(Choice(f"{instance.name:<14} {addresses}{note}", instance.name))
    return choices


def _associate(api: NetconAPI, f: FloatingIPView, values: Values) -> Outcome:
    # An associated address moves, in one call, as `floating associate` moves it.
    done = api.associate_floating_ip(f.address, values.text("choice"))
    moved = f", moved from {f.instance}" if f.instance is not None else ""
    return Outcome(f"{done.address} → {done.instance} ({done.fixed_address}){moved}")


def _disassociate(api: NetconAPI, f: FloatingIPView, values: Values) -> Outcome:
    done = api.disassociate_floating_ip(f.address)
    return Outcome(f"{done.address} disassociated from {f.instance}")


def _refuse_release(f: FloatingIPView) -> str | None:
    if f.project is None:
        return f"{f.address} is not allocated: there is nothing to release"
    if f.instance is not None:
        return f"{f.address} is associated with {f.instance}: disassociate it first (x)"
    return None


def _release(api: NetconAPI, f: FloatingIPView, values: Values) -> Outcome:
    api.release_floating_ip(f.address)
    return Outcome(f"{f.address} released from {f.project}")


def _ip_range(value: str) -> str:
    validate.ip_range("ip_range", value)
    return value


def _range_form(situation: Situation) -> Form:
    settings = situation.settings
    hosts = tuple(sorted(set(situation.known.hosts) | {settings.host}))
    return Form(
        "New floating range",
        (
            Field("host", "Host", partial(validate.host_name, "host"), value=settings.host,
                  choices=hosts),
            Field("ip_range", "Range", _ip_range, example="203.0.113.0/28 or A-B"),
            Field("pool", "Pool", partial(validate.name, "pool"), optional=True,
                  placeholder=settings.default_floating_pool),
            Field("interface", "Interface", partial(validate.ifname, "interface"),
                  optional=True, placeholder=settings.public_interface),
        ),
        "Create",
    )


def _create_range(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    made = api.create_floating_range(
        values.text("host"), values.text("ip_range"), pool=values.optional("pool"),
        interface=values.optional("interface"),
    )
    return Outcome(f"{made.addresses} floating IPs created in {values.text('ip_range')}")


def _delete_range_confirm(f: FloatingIPView, values: Values) -> Confirm:
    wanted = values.text("ip_range")
    count = len(validate.ip_range("ip_range", wanted))
    return Confirm(
        f"Delete every floating IP in this range ({count} addresses)? None may be allocated.",
        wanted,
        "Delete",
    )


def _delete_range(api: NetconAPI, f: FloatingIPView, values: Values) -> Outcome:
    wanted = values.text("ip_range")
    gone = api.delete_floating_range(wanted)
    return Outcome(f"{gone.addresses} floating IPs deleted from {wanted}")


FLOATING: ViewSpec[FloatingIPView] = ViewSpec(
    name="floating",
    title="Floating IPs",
    aliases=("floating", "floatingips", "fip", "fips"),
    noun=("floating IP", "floating IPs"),
    columns=(
        Column("address", "Address", 15),
        Column("project", "Project", 12, priority=1, min_width=8),
        Column("instance", "Instance", 14, priority=1, min_width=10),
        Column("fixed", "Fixed IP", 15, priority=2, min_width=15),
        Column("pool", "Pool", 8, priority=4, min_width=6),
        Column("host", "Host", 10, priority=3, min_width=8),
    ),
    cells=lambda f: (
        f.address,
        text(f.project),
        text(f.instance),
        text(f.fixed_address),
        f.pool,
        f.host,
    ),
    key=lambda f: f.id,
    detail=_detail,
    fetch=lambda api, scope: api.list_floating_ips(),
    drill=lambda f: Drill("instances", {"instance": f.instance}, f.address)
    if f.instance
    else None,
    empty="No floating IPs: press c to add a range of public addresses",
    host=lambda f: f.host,
    subjects=lambda f: (f.address,),
    owns=lambda api, f: [
        ("pool", f.pool),
        ("project", f.project or "free (not allocated)"),
        ("instance", f"{f.instance} at {f.fixed_address}" if f.instance else "none"),
        ("NAT on", f"{f.host} through {f.interface}"),
    ],
    copy=lambda f: f.address,
    actions=(
        ViewAction("floating.allocate", "n", "Allocate", footer=1, host_change=False,
                   form=lambda s: allocate_form(s, s.project, ""), call=_allocate),
        RowAction(
            "floating.associate", "a", "Associate", footer=2, refuse=_refuse_associate,
            pick=Pick(
                title=_associate_title,
                choices=_instances_for,
                empty=lambda f: f"{f.project} has no other instance to associate {f.address} with",
            ),
            call=_associate,
        ),
        RowAction(
            "floating.disassociate", "x", "Disassociate", footer=3, bulk=True,
            past="disassociated", name=lambda f: f.address,
            refuse=lambda f: None if f.instance else f"{f.address} is not associated",
            confirm=lambda f, v: Confirm(
                f"Disassociate from {f.instance} ({f.fixed_address})?", f.address,
                "Disassociate",
            ),
            call=_disassociate,
        ),
        RowAction(
            "floating.release", "D", "Release", footer=4, bulk=True, past="released",
            host_change=False, name=lambda f: f.address, refuse=_refuse_release,
            confirm=lambda f, v: Confirm(
                f"Release this floating IP from project {f.project}?", f.address, "Release"
            ),
            call=_release,
        ),
        ViewAction("floating.create_range", "c", "New range", host_change=False,
                   form=_range_form, call=_create_range),
        RowAction(
            "floating.delete_range", "X", "Delete range", host_change=False,
            form=lambda s, f: Form(
                "Delete a floating range",
                (Field("ip_range", "Range", _ip_range, value=f.address),),
                "Next",
            ),
            confirm=_delete_range_confirm,
            call=_delete_range,
        ),
    ),
)
