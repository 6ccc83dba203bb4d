"""`netcon fixed list|reserve|unreserve`."""

from __future__ import annotations

import argparse

from tui.cli.context import Context, column

COLUMNS = [
    column("NETWORK", "network"),
    column("ADDRESS", "address"),
    column("MAC", "mac"),
    column("INSTANCE", "instance"),
    column("PROJECT", "project"),
    column("STATE", "state"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    fixed = commands.add_parser("fixed", help="list, reserve and unreserve fixed IPs")
    sub = fixed.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", parents=[common], help="list fixed IPs")
    listing.add_argument("--network", metavar="ID|CIDR")
    listing.add_argument("--project")
    listing.add_argument("--search", help="part of an address, MAC or instance name")
    listing.add_argument("--in-use", action="store_true", help="only addresses held by instances")
    listing.set_defaults(handler=list_fixed)
    for action, text in (
        ("reserve", "keep an address from instances"),
        ("unreserve", "give it back"),
    ):
        parser = sub.add_parser(action, parents=[common], help=text)
        parser.add_argument("address")
        parser.set_defaults(handler=reserve if action == "reserve" else unreserve)


def list_fixed(ctx: Context) -> None:
    page = ctx.service.list_fixed_ips(
        network=ctx.args.network, project=ctx.args.project, search=ctx.args.search
    )
    rows = [r for r in page.rows if r.instance or r.leased] if ctx.args.in_use else list(page.rows)
    ctx.emit(rows, COLUMNS)


def reserve(ctx: Context) -> None:
    ctx.service.reserve_fixed_ip(ctx.args.address)
    ctx.say(f"reserved {ctx.args.address}", reserved=ctx.args.address)


def unreserve(ctx: Context) -> None:
    ctx.service.unreserve_fixed_ip(ctx.args.address)
    ctx.say(f"unreserved {ctx.args.address}", unreserved=ctx.args.address)
