"""Projects: who owns instances, a VLAN network, floating IPs and security groups."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.content import Content

from core import validate
from core.views import ProjectView
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
    ViewAction,
    ViewSpec,
    choice,
    lines,
    text,
)
from tui.views.floating import allocate_form, allocated
from tui.views.instances import launch_form, launched

if TYPE_CHECKING:
    from core.service.api import NetconAPI

MANAGERS = ("vlan", "flatdhcp", "flat")


def _detail(p: ProjectView) -> Content:
    return lines(
        [
            ("project", p.name),
            ("manager", p.manager),
            ("network", p.network),
            ("instances", p.instances),
            ("floating IPs", p.floating_ips),
            ("created", p.created_at),
        ]
    )


def _create_form(situation: Situation) -> Form:
    return Form(
        "New project",
        (
            Field("name", "Name", partial(validate.name, "name"), names=("project",)),
            Field(
                "manager", "Manager", choice("manager", MANAGERS), optional=True,
                placeholder=situation.settings.network_manager, choices=MANAGERS,
            ),
        ),
        "Create",
    )


def _create(api: NetconAPI, values: Values, scope: object) -> Outcome:
    project = api.create_project(values.text("name"), values.optional("manager"))
    return Outcome(f"Project {project.name} created ({project.manager})")


def _refuse_delete(p: ProjectView) -> str | None:
    held = []
    if p.instances:
        held.append(f"{p.instances} instance(s)")
    if p.floating_ips:
        held.append(f"{p.floating_ips} floating IP(s)")
    if held:
        return f"{p.name} still has {' and '.join(held)}: terminate and release them first"
    return None


def _delete(api: NetconAPI, p: ProjectView, values: Values) -> Outcome:
    api.delete_project(p.name)
    return Outcome(f"Project {p.name} deleted")


def _launch_here(situation: Situation, p: ProjectView) -> Form:
    return launch_form(situation, p.name)


def _launch(api: NetconAPI, p: ProjectView, values: Values) -> Outcome:
    return launched(api, values)


def _allocate_here(situation: Situation, p: ProjectView) -> Form:
    return allocate_form(situation, p.name, "")


def _allocate(api: NetconAPI, p: ProjectView, values: Values) -> Outcome:
    return allocated(api, values)


PROJECTS: ViewSpec[ProjectView] = ViewSpec(
    name="projects",
    title="Projects",
    aliases=("projects", "project", "proj"),
    noun=("project", "projects"),
    columns=(
        Column("name", "Name", 16),
        Column("manager", "Manager", 8, priority=2),
        Column("network", "Network", 18, priority=1),
        Column("instances", "Inst", 5, numeric=True, priority=3),
        Column("floating", "FIPs", 5, numeric=True, priority=3),
    ),
    cells=lambda p: (p.name, p.manager, text(p.network), str(p.instances), str(p.floating_ips)),
    key=lambda p: p.id,
    detail=_detail,
    fetch=lambda api, scope: api.list_projects(),
    drill=lambda p: Drill("instances", {"project": p.name}, p.name),
    owns=lambda api, p: [
        ("instances", ", ".join(i.name for i in api.list_instances(project=p.name))
         or "none"),
        ("floating IPs", ", ".join(f.address for f in api.list_floating_ips(project=p.name))
         or "none"),
        ("security groups", ", ".join(g.name for g in api.list_security_groups(p.name))
         or "none"),
    ],
    empty="No projects yet: press n to create one (or run `netcon demo` for a demo cloud)",
    actions=(
        ViewAction("project.create", "n", "New project", footer=1, host_change=False,
                   form=_create_form, call=_create),
        RowAction(
            "project.networks", "N", "Networks", footer=2, mutating=False, host_change=False,
            goto=lambda p: Drill("networks", {"project": p.name}, p.name),
        ),
        RowAction("project.launch", "L", "Launch here", footer=2, form=_launch_here,
                  call=_launch),
        RowAction("project.allocate", "A", "Allocate FIP here", footer=3, host_change=False,
                  form=_allocate_here, call=_allocate),
        RowAction(
            "project.delete", "D", "Delete project", footer=4, host_change=False,
            refuse=_refuse_delete,
            confirm=lambda p, v: Confirm(
                f"Delete project {p.name} and its security groups?", p.name, "Delete"
            ),
            call=_delete,
        ),
    ),
)
