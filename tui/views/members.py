"""A security group's members (M on a group): the instances in it, to add more to it,
take some out (marks for many) or launch a new one already in it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from core.views import InstanceView
from tui.views.base import (
    Choice,
    Confirm,
    Drill,
    Outcome,
    PickMany,
    RowAction,
    Scope,
    Values,
    ViewAction,
    ViewSpec,
)
from tui.views.instances import INSTANCES, launch_form, launched

if TYPE_CHECKING:
    from core.service.api import NetconAPI


class Member(NamedTuple):
    """An instance as a member of one group: leaving is of this group."""

    project: str
    group: str
    instance: InstanceView


def _members(api: NetconAPI, scope: Scope) -> Sequence[Member]:
    project, group = str(scope["project"]), str(scope["group"])
    return [
        Member(project, group, i)
        for i in api.list_instances(project=project)
        if group in i.security_groups
    ]


def _outsiders(api: NetconAPI, scope: Scope) -> list[tuple[Choice, bool]]:
    group = str(scope["group"])
    return [
        (Choice(f"{i.name}  {', '.join(i.security_groups) or 'no group'}", i.name), False)
        for i in api.list_instances(project=str(scope["project"]))
        if group not in i.security_groups
    ]


def _add(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    names = values.names("chosen")
    for name in names:
        api.add_instance_security_group(name, str(scope["group"]))
    return Outcome(f"{', '.join(names)} joined {scope['project']}/{scope['group']}")


def _remove(api: NetconAPI, m: Member, values: Values) -> Outcome:
    api.remove_instance_security_group(m.instance.name, m.group)
    return Outcome(f"{m.instance.name} left {m.project}/{m.group}")


def _launch(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    return launched(api, values)


_INSTANCE = INSTANCES

MEMBERS: ViewSpec[Member] = ViewSpec(
    name="members",
    title="Members",
    aliases=("members",),
    noun=("member", "members"),
    columns=INSTANCES.columns,
    cells=lambda m: _INSTANCE.cells(m.instance),
    key=lambda m: m.instance.id,
    detail=lambda m: _INSTANCE.detail(m.instance),
    fetch=_members,
    drill=lambda m: _INSTANCE.drill(m.instance),
    empty="No instance is in this group: a adds some, n launches one in it",
    host=lambda m: m.instance.host,
    subjects=lambda m: _INSTANCE.subjects(m.instance),
    owns=lambda api, m: _INSTANCE.owns(api, m.instance),
    copy=lambda m: m.instance.name,
    listed=False,
    actions=(
        ViewAction(
            "member.launch", "n", "Launch in group", footer=1,
            form=lambda situation: launch_form(
                situation, str(situation.scope["project"]), str(situation.scope["group"])
            ),
            call=_launch,
        ),
        ViewAction(
            "member.add", "a", "Add members", footer=2,
            pick_many=PickMany(
                title=lambda s: f"Instances of {s['project']} to add to {s['group']}",
                choices=_outsiders,
                empty=lambda s: f"every instance of {s['project']} is in {s['group']} already",
            ),
            call=_add,
        ),
        RowAction(
            "member.remove", "x", "Take out", footer=3, bulk=True, past="taken out",
            name=lambda m: m.instance.name,
            confirm=lambda m, v: Confirm(
                f"Take this instance out of {m.project}/{m.group}?", m.instance.name,
                "Take out",
            ),
            call=_remove,
        ),
    ),
)


def members_of(project: str, group: str) -> Drill:
    return Drill("members", {"project": project, "group": group}, f"{project}/{group}")
