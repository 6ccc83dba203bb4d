"""`netcon project create|list|delete`."""

from __future__ import annotations

import sys

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg

COLUMNS = (
    col("NAME"),
    col("MANAGER"),
    col("NETWORK"),
    col("INSTANCES"),
    col("FLOATING IPS"),
)

group = Group("project", "create, list and delete projects")


@group.command(
    "create",
    "create a project",
    arg("name"),
    arg(
        "--manager",
        complete=("flat", "flatdhcp", "vlan"),
        help="flat, flatdhcp or vlan (default: network_manager in netcon.toml, vlan)",
    ),
)
def create_project(ctx: Context) -> None:
    project = ctx.service.create_project(ctx.args.name, ctx.args.manager)
    ctx.output.one(project, COLUMNS)
    obstacle = ctx.service.launch_obstacle(project.name)
    if obstacle is not None:
        print(f"netcon: note: {obstacle}", file=sys.stderr)


@group.command("list", "list projects")
def list_projects(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_projects(), COLUMNS)


@group.command("delete", "delete a project with no instances", arg("name", complete="project"))
def delete_project(ctx: Context) -> None:
    gone = ctx.service.delete_project(ctx.args.name)
    ctx.output.outcome(gone, COLUMNS, f"deleted project {gone.name}")
