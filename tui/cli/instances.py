"""`netcon instance launch|terminate|list|show`."""

from __future__ import annotations

import argparse

from core.views import InstanceView
from tui.cli.context import Context, column


def _addresses(instance: InstanceView) -> str:
    parts = []
    for a in instance.addresses:
        parts.append(f"{a.address}" + (f" ({a.floating})" if a.floating else ""))
    return ", ".join(parts) or "-"


COLUMNS = [
    column("NAME", "name"),
    column("PROJECT", "project"),
    column("HOST", "host"),
    ("ADDRESSES", _addresses),
    column("SECURITY GROUPS", "security_groups"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    instance = commands.add_parser("instance", help="launch, terminate, list and show instances")
    sub = instance.add_subparsers(dest="action", metavar="ACTION", required=True)
    launch = sub.add_parser(
        "launch", parents=[common], help="launch an instance (allocates its address)"
    )
    launch.add_argument("--project", required=True)
    launch.add_argument("name")
    launch.add_argument(
        "--security-group", action="append", default=[], dest="security_groups", metavar="GROUP"
    )
    launch.set_defaults(handler=launch_instance)
    terminate = sub.add_parser("terminate", parents=[common], help="terminate an instance")
    terminate.add_argument("name")
    terminate.set_defaults(handler=terminate_instance)
    listing = sub.add_parser("list", parents=[common], help="list instances")
    listing.add_argument("--project")
    listing.set_defaults(handler=list_instances)
    show = sub.add_parser("show", parents=[common], help="show an instance and its injected config")
    show.add_argument("name")
    show.set_defaults(handler=show_instance)


def launch_instance(ctx: Context) -> None:
    a = ctx.args
    ctx.emit(ctx.service.launch_instance(a.project, a.name, a.security_groups), COLUMNS)


def terminate_instance(ctx: Context) -> None:
    ctx.service.terminate_instance(ctx.args.name)
    ctx.say(f"terminated {ctx.args.name}", terminated=ctx.args.name)


def list_instances(ctx: Context) -> None:
    ctx.emit(ctx.service.list_instances(project=ctx.args.project), COLUMNS)


def show_instance(ctx: Context) -> None:
    detail = ctx.service.get_instance(ctx.args.name)
    if ctx.json:
        ctx.emit(detail, COLUMNS)
        return
    ctx.emit(detail.instance, COLUMNS + [("MACS", lambda i: [a.mac for a in i.addresses])])
    if detail.injected is not None:
        print("\n# /etc/network/interfaces", file=ctx.out)
        print(detail.injected.interfaces, end="", file=ctx.out)
        print("\n# cloud-init network-config (version 2)", file=ctx.out)
        print(detail.injected.cloud_init, end="", file=ctx.out)
