"""Instances: launching one allocates its fixed IP (and under VLAN, the project's network)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from textual.content import Content

from core import validate
from core.views import InstanceDetail, InstanceIngressView, InstanceView
from tui.views.base import (
    Choice,
    Column,
    Confirm,
    Drill,
    Field,
    Form,
    Outcome,
    PickMany,
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
    from textual.screen import Screen

    from core.service.api import NetconAPI


def _names(field: str) -> Callable[[str], list[str]]:
    def check(value: str) -> list[str]:
        return [validate.name(field, part.strip()) for part in value.split(",") if part.strip()]

    return check


def launch_form(situation: Situation, project: str, groups: str = "") -> Form:
    projects = situation.known.projects
    return Form(
        "Launch an instance",
        (
            Field("project", "Project", partial(validate.name, "project"), value=project,
                  choices=projects),
            Field("name", "Name", partial(validate.hostname, "name")),
            Field("security_groups", "Security groups", _names("security_group"),
                  value=groups, optional=True, placeholder="default",
                  example="default, web", names=("security_group",)),
        ),
        "Launch",
    )


def launched(api: NetconAPI, values: Values) -> Outcome:
    instance = api.launch_instance(
        values.text("project"), values.text("name"), values.names("security_groups")
    )
    addresses = ", ".join(a.address for a in instance.addresses) or "no address"
    return Outcome(f"Launched {instance.name}: {addresses}")


def _detail(i: InstanceView) -> Content:
    pairs: list[tuple[str, object]] = [
        ("instance", i.name),
        ("project", i.project),
        ("host", i.host),
        ("groups", ", ".join(i.security_groups) or None),
        ("created", i.created_at),
    ]
    for a in i.addresses:
        floating = f"  ⇄ {a.floating}" if a.floating else ""
        pairs.append((a.network, f"{a.address}  {a.mac}{floating}"))
    return lines(pairs)


def _instances(api: NetconAPI, scope: Scope) -> Sequence[InstanceView]:
    project = scope.get("project")
    instances: Sequence[InstanceView] = api.list_instances(
        project=str(project) if project else None
    )
    if scope.get("instance"):
        instances = [i for i in instances if i.name == scope["instance"]]
    if scope.get("group"):
        instances = [i for i in instances if scope["group"] in i.security_groups]
    return instances


def _ingress(ingress: InstanceIngressView) -> list[str | Content | tuple[str, str]]:
    """What may reach the instance: every rule of its groups, what always passes, and the
    rest, as the host enforces it (`netcon secgroup rules` prints the same)."""
    parts: list[str | Content | tuple[str, str]] = [
        "\n\n", ("may reach it (new connections)", "bold"), "\n"
    ]
    parts += [f"  {rule.text}  [{rule.group} #{rule.id}]\n" for rule in ingress.rules]
    if not ingress.rules:
        parts.append("  no rule lets anything in\n")
    parts += [f"  {always}\n" for always in ingress.always]
    parts.append(f"  anything else: {ingress.otherwise}\n")
    return parts


def _full(detail: InstanceDetail, ingress: InstanceIngressView) -> Content:
    parts: list[str | Content | tuple[str, str]] = [_detail(detail.instance)]
    parts += _ingress(ingress)
    if detail.injected is not None:
        parts += [
            "\n", ("written into the image (Flat network)", "bold"), "\n",
            detail.injected.interfaces, "\n", detail.injected.cloud_init,
        ]
    return Content.assemble(*parts)


def _open(api: NetconAPI, i: InstanceView) -> Callable[[], Screen[object]]:
    detail = api.get_instance(i.name)
    ingress = api.instance_ingress(i.name)

    def show() -> Screen[object]:
        from tui.widgets.dialogs import TextDialog

        return TextDialog(f"Instance {i.name}", _full(detail, ingress))

    return show


PROTOCOLS = ("tcp", "udp", "icmp")


def _check_form(situation: Situation, i: InstanceView) -> Form:
    return Form(
        f"May a new connection reach {i.name}?",
        (
            Field("source", "From address", partial(validate.ipv4_address, "source")),
            Field("protocol", "Protocol", str, value="tcp", choices=PROTOCOLS),
            Field("port", "Port (ICMP: type)", partial(validate.integer, "port", low=0,
                  high=65535), optional=True, example="22"),
        ),
        "Check",
    )


def _check(api: NetconAPI, i: InstanceView, values: Values) -> Outcome:
    protocol = values.text("protocol")
    port = values.optional("port")
    if protocol == "icmp":
        verdict = api.explain_ingress(i.name, values.text("source"), protocol, icmp_type=port)
    else:
        verdict = api.explain_ingress(i.name, values.text("source"), protocol, port=port)
    answer = "allowed" if verdict.allowed else "denied"
    return Outcome(f"{verdict.packet} to {verdict.address}: {answer} by {verdict.decided_by}")


def _launch(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    return launched(api, values)


def _terminate(api: NetconAPI, i: InstanceView, values: Values) -> Outcome:
    api.terminate_instance(i.name)
    return Outcome(f"{i.name} terminated")


def _group_choices(api: NetconAPI, i: InstanceView) -> list[tuple[Choice, bool]]:
    # The instance as it is now, not as the row last showed it.
    current = set(api.get_instance(i.name).instance.security_groups)
    return [
        (Choice(f"{g.name}  {g.description}".rstrip(), g.name), g.name in current)
        for g in api.list_security_groups(project=i.project)
    ]


def set_groups(api: NetconAPI, i: InstanceView, values: Values) -> Outcome:
    chosen, before = values.names("chosen"), values.names("before")
    groups = api.set_instance_security_groups(i.name, chosen)
    joined = [g for g in chosen if g not in before]
    left = [g for g in before if g not in chosen]
    said = [f"joined {', '.join(joined)}"] if joined else []
    said += [f"left {', '.join(left)}"] if left else []
    now = ", ".join(groups) or "no group (only replies and DHCP reach it)"
    return Outcome(f"{i.name} {'; '.join(said) or 'unchanged'}: now in {now}")


def _addresses(i: InstanceView) -> str:
    return ", ".join(a.address for a in i.addresses) or "no address"


INSTANCES: ViewSpec[InstanceView] = ViewSpec(
    name="instances",
    title="Instances",
    aliases=("instances", "instance", "servers", "vm", "vms"),
    noun=("instance", "instances"),
    columns=(
        Column("name", "Name", 14),
        Column("project", "Project", 12, priority=1, min_width=8),
        Column("addresses", "Addresses", 15, priority=1, min_width=15),
        # A floating address is at most 15 characters, usually 11 (203.0.113.1).
        Column("floating", "Floating", 15, priority=3, min_width=11),
        Column("host", "Host", 10, priority=4, min_width=6),
        # Legible at 80 columns: "default, web".
        Column("groups", "Groups", 16, priority=2, min_width=12),
    ),
    cells=lambda i: (
        i.name,
        i.project,
        ", ".join(a.address for a in i.addresses) or "-",
        ", ".join(a.floating for a in i.addresses if a.floating) or "-",
        text(i.host),
        ", ".join(i.security_groups) or "-",
    ),
    key=lambda i: i.id,
    detail=_detail,
    fetch=_instances,
    drill=lambda i: Drill(open=lambda api: _open(api, i)),
    owns=lambda api, i: [
        ("may reach it", "; ".join(r.text for r in api.instance_ingress(i.name).rules)
         or "no rule lets anything in"),
    ],
    copy=lambda i: i.name,
    empty="No instances: press n to launch one",
    host=lambda i: i.host,
    # The network too: a network its host holds back leaves its instances unserved.
    subjects=lambda i: tuple(
        name
        for a in i.addresses
        for name in (a.address, a.mac, a.floating, a.network)
        if name
    ),
    actions=(
        ViewAction(
            "instance.launch", "n", "Launch", footer=1,
            form=lambda situation: launch_form(
                situation, str(situation.scope.get("project", ""))
            ),
            call=_launch,
        ),
        RowAction(
            "instance.groups", "g", "Groups", footer=2, name=lambda i: i.name,
            pick_many=PickMany(
                title=lambda i: f"Security groups of {i.name} ({i.project})",
                choices=_group_choices,
                empty=lambda i: f"{i.project} has no security groups",
            ),
            call=set_groups,
        ),
        RowAction(
            "instance.check", "e", "Check access", mutating=False, host_change=False,
            name=lambda i: i.name, form=_check_form, call=_check,
        ),
        RowAction(
            "instance.terminate", "D", "Terminate", footer=3, bulk=True, past="terminated",
            name=lambda i: i.name,
            confirm=lambda i, v: Confirm(
                f"Terminate this instance of {i.project} ({_addresses(i)})?", i.name, "Terminate"
            ),
            call=_terminate,
        ),
    ),
)
