"""`netcon project create|list|delete`."""

from __future__ import annotations

import argparse

from tui.cli.context import Context, column

COLUMNS = [
    column("NAME", "name"),
    column("MANAGER", "manager"),
    column("NETWORK", "network"),
    column("INSTANCES", "instances"),
    column("FLOATING IPS", "floating_ips"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    project = commands.add_parser("project", help="create, list and delete projects")
    sub = project.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", parents=[common], help="create a project")
    create.add_argument("name")
    create.add_argument("--manager", help="flat, flatdhcp or vlan (default: network_manager)")
    create.set_defaults(handler=create_project)
    sub.add_parser("list", parents=[common], help="list projects").set_defaults(
        handler=list_projects
    )
    remove = sub.add_parser("delete", parents=[common], help="delete a project with no instances")
    remove.add_argument("name")
    remove.set_defaults(handler=delete_project)


def create_project(ctx: Context) -> None:
    ctx.emit(ctx.service.create_project(ctx.args.name, ctx.args.manager), COLUMNS)


def list_projects(ctx: Context) -> None:
    ctx.emit(ctx.service.list_projects(), COLUMNS)


def delete_project(ctx: Context) -> None:
    ctx.service.delete_project(ctx.args.name)
    ctx.say(f"deleted project {ctx.args.name}", deleted=ctx.args.name)
