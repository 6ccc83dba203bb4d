"""Security groups: Enter lists a group's rules; M lists the instances that are members."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.content import Content

from core import validate
from core.errors import InvalidInput
from core.secrules import rule_text
from core.views import SecurityGroupView
from tui.views.base import (
    Column,
    Confirm,
    Drill,
    Field,
    Form,
    Outcome,
    RowAction,
    Scope,
    Situation,
    Values,
    ViewAction,
    ViewSpec,
    choice,
    lines,
)
from tui.views.members import members_of

if TYPE_CHECKING:
    from core.service.api import NetconAPI

PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "any")
ETHERTYPES = ("IPv4", "IPv6")


def _ports(field: str) -> Callable[[str], int]:
    # ICMP takes -1 for "any type/code"; the service checks each protocol's range again.
    def check(value: str) -> int:
        if value == "-1":
            return -1
        return validate.integer(field, value, 0, 65535)

    return check


def _cidr(text: str) -> str:
    # Either family; the service checks it against the rule's ethertype.
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        raise InvalidInput(
            "cidr", f"{validate.shown(text)} must be a CIDR like 10.0.0.0/8 or 2001:db8::/64"
        ) from None
    return str(network)


def rule_form(project: str, group: str) -> Form:
    return Form(
        f"Add a rule to {project}/{group}",
        (
            Field("protocol", "Protocol", choice("protocol", PROTOCOLS), value="tcp",
                  choices=PROTOCOLS),
            # As the CLI takes them: one port is a range of one; ICMP may give none.
            Field("from_port", "From port", _ports("from_port"), optional=True,
                  example="22 (icmp: type, none for any)"),
            Field("to_port", "To port", _ports("to_port"), optional=True,
                  placeholder="the from port"),
            Field("cidr", "CIDR", _cidr, optional=True,
                  placeholder="0.0.0.0/0, or ::/0 for IPv6"),
            Field("source_group", "Source group", partial(validate.name, "source_group"),
                  optional=True, example="web (instead of a CIDR)"),
            # Neutron's ethertype: the family the rule judges.
            Field("ethertype", "Family", choice("ethertype", ETHERTYPES), optional=True,
                  choices=ETHERTYPES, placeholder="the CIDR's, else IPv4"),
        ),
        "Add",
        first="from_port",
    )


def add_rule(api: NetconAPI, project: str, group: str, values: Values) -> Outcome:
    rule = api.add_security_group_rule(
        project, group, values.text("protocol"), values.optional("from_port"),
        values.optional("to_port"), cidr=values.optional("cidr"),
        source_group=values.optional("source_group"),
        ethertype=values.optional("ethertype"),
    )
    return Outcome(f"Rule added to {project}/{group}: {rule_text(rule)}")


def _detail(g: SecurityGroupView) -> Content:
    head = lines(
        [
            ("group", f"{g.name} (project {g.project})"),
            ("description", g.description or None),
            ("instances", g.instances),
            ("rules", len(g.rules)),
        ]
    )
    rules = "\n".join(f"  {rule_text(r)}" for r in g.rules) or "  (no rules)"
    return Content.assemble(head, "\n", rules)


def _create_form(situation: Situation) -> Form:
    return Form(
        "New security group",
        (
            Field("project", "Project", partial(validate.name, "project"),
                  value=situation.project, choices=situation.known.projects),
            Field("name", "Name", partial(validate.name, "name")),
            Field("description", "Description", optional=True),
        ),
        "Create",
    )


def _create(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    group = api.create_security_group(
        values.text("project"), values.text("name"), values.optional("description") or ""
    )
    return Outcome(f"Security group {group.name} created in {group.project}")


def _refuse_delete(g: SecurityGroupView) -> str | None:
    if g.name == "default":
        return "every project keeps its default security group"
    if g.instances:
        return f"{g.name} is used by {g.instances} instance(s)"
    return None


def _delete(api: NetconAPI, g: SecurityGroupView, values: Values) -> Outcome:
    api.delete_security_group(g.project, g.name)
    return Outcome(f"Security group {g.name} deleted from {g.project}")


def _add_rule(api: NetconAPI, g: SecurityGroupView, values: Values) -> Outcome:
    return add_rule(api, g.project, g.name, values)


SECGROUPS: ViewSpec[SecurityGroupView] = ViewSpec(
    name="secgroups",
    title="Security groups",
    aliases=("secgroups", "secgroup", "sg", "security-groups"),
    noun=("security group", "security groups"),
    columns=(
        Column("project", "Project", 12, priority=1),
        Column("name", "Name", 14),
        Column("rules", "Rules", 5, numeric=True, priority=2),
        Column("instances", "Inst", 5, numeric=True, priority=2),
        Column("description", "Description", 24, priority=3),
    ),
    cells=lambda g: (g.project, g.name, str(len(g.rules)), str(g.instances), g.description),
    key=lambda g: g.id,
    # Marked while a host's filter still lacks a change of the group (a rule, a member
    # joining or leaving): this host's plan and the other hosts' records name the group
    # as "project/name".
    subjects=lambda g: (f"{g.project}/{g.name}",),
    every_host=True,
    detail=_detail,
    fetch=lambda api, scope: api.list_security_groups(
        project=str(scope["project"]) if scope.get("project") else None
    ),
    drill=lambda g: Drill(
        "rules", {"project": g.project, "group": g.name}, f"{g.project}/{g.name}"
    ),
    owns=lambda api, g: [
        ("rules", "; ".join(rule_text(r) for r in g.rules) or "none"),
        ("members", ", ".join(
            i.name for i in api.list_instances(project=g.project)
            if g.name in i.security_groups
        ) or "none"),
    ],
    copy=lambda g: f"{g.project}/{g.name}",
    empty="No security groups: create a project first (every project gets `default`)",
    actions=(
        ViewAction("secgroup.create", "n", "New group", footer=1, host_change=False,
                   form=_create_form, call=_create),
        RowAction("secgroup.add_rule", "a", "Add rule", footer=2, host_change=False,
                  form=lambda s, g: rule_form(g.project, g.name), call=_add_rule),
        RowAction(
            "secgroup.members", "M", "Members", footer=3, mutating=False, host_change=False,
            goto=lambda g: members_of(g.project, g.name),
        ),
        RowAction(
            "secgroup.delete", "D", "Delete group", footer=4, host_change=False,
            refuse=_refuse_delete,
            confirm=lambda g, v: Confirm(
                f"Delete this security group of {g.project} with {len(g.rules)} rule(s)?",
                g.name,
                "Delete",
            ),
            call=_delete,
        ),
    ),
)
