"""`netcon floating create|delete|list|allocate|associate|disassociate|release`."""

from __future__ import annotations

import argparse

from tui.cli.context import Context, column

COLUMNS = [
    column("ADDRESS", "address"),
    column("POOL", "pool"),
    column("HOST", "host"),
    column("INTERFACE", "interface"),
    column("PROJECT", "project"),
    column("INSTANCE", "instance"),
    column("FIXED IP", "fixed_address"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    floating = commands.add_parser("floating", help="the pool of public addresses")
    sub = floating.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = sub.add_parser(
        "create", parents=[common], help="add a range of floating IPs for a host"
    )
    create.add_argument("host")
    create.add_argument("ip_range", metavar="IP_RANGE", help="a CIDR, A-B, or one address")
    create.add_argument("--pool")
    create.add_argument("--interface", help="public interface the addresses live on")
    create.set_defaults(handler=create_range)

    remove = sub.add_parser("delete", parents=[common], help="delete a range of free floating IPs")
    remove.add_argument("ip_range", metavar="IP_RANGE")
    remove.set_defaults(handler=delete_range)

    listing = sub.add_parser("list", parents=[common], help="list floating IPs")
    listing.add_argument("--host")
    listing.add_argument("--project")
    listing.set_defaults(handler=list_floating)

    allocate = sub.add_parser("allocate", parents=[common], help="give a project a floating IP")
    allocate.add_argument("--project", required=True)
    allocate.add_argument("--pool")
    allocate.set_defaults(handler=allocate_floating)

    associate = sub.add_parser(
        "associate", parents=[common], help="NAT a floating IP to an instance"
    )
    associate.add_argument("address")
    associate.add_argument("instance")
    associate.add_argument("--fixed-address", help="which of the instance's fixed IPs")
    associate.set_defaults(handler=associate_floating)

    for action, text, handler in (
        ("disassociate", "remove a floating IP's NAT", disassociate_floating),
        ("release", "give a floating IP back to the pool", release_floating),
    ):
        parser = sub.add_parser(action, parents=[common], help=text)
        parser.add_argument("address")
        parser.set_defaults(handler=handler)


def create_range(ctx: Context) -> None:
    a = ctx.args
    count = ctx.service.create_floating_range(
        a.host, a.ip_range, pool=a.pool, interface=a.interface
    )
    ctx.say(f"created {count} floating IP(s) in {a.ip_range} for {a.host}", created=count)


def delete_range(ctx: Context) -> None:
    count = ctx.service.delete_floating_range(ctx.args.ip_range)
    ctx.say(f"deleted {count} floating IP(s) in {ctx.args.ip_range}", deleted=count)


def list_floating(ctx: Context) -> None:
    ctx.emit(ctx.service.list_floating_ips(host=ctx.args.host, project=ctx.args.project), COLUMNS)


def allocate_floating(ctx: Context) -> None:
    floating = ctx.service.allocate_floating_ip(ctx.args.project, pool=ctx.args.pool)
    if ctx.json:
        ctx.emit(floating, COLUMNS)
    else:
        # Scripts capture the address: print it alone.
        print(floating.address, file=ctx.out)


def associate_floating(ctx: Context) -> None:
    a = ctx.args
    floating = ctx.service.associate_floating_ip(
        a.address, a.instance, fixed_address=a.fixed_address
    )
    ctx.say(
        f"associated {floating.address} with {floating.instance} ({floating.fixed_address})",
        **floating.to_dict(),
    )


def disassociate_floating(ctx: Context) -> None:
    floating = ctx.service.disassociate_floating_ip(ctx.args.address)
    ctx.say(f"disassociated {floating.address}", **floating.to_dict())


def release_floating(ctx: Context) -> None:
    ctx.service.release_floating_ip(ctx.args.address)
    ctx.say(f"released {ctx.args.address}", released=ctx.args.address)
