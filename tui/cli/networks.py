"""`netcon network create|list|show|delete`."""

from __future__ import annotations

import argparse

from core.errors import InvalidInput
from tui.cli.context import Context, column

COLUMNS = [
    column("ID", "id"),
    column("LABEL", "label"),
    column("MANAGER", "manager"),
    column("CIDR", "cidr"),
    column("VLAN", "vlan"),
    column("BRIDGE", "bridge"),
    column("GATEWAY", "gateway"),
    column("PROJECT", "project"),
    column("HOST", "host"),
    column("USED", "used"),
    column("FREE", "free"),
]

DETAIL = COLUMNS[:5] + [
    column("SEGMENTATION", "segmentation"),
    column("NETMASK", "netmask"),
    column("GATEWAY", "gateway"),
    column("BROADCAST", "broadcast"),
    column("DHCP START", "dhcp_start"),
    column("DNS", "dns1"),
    column("BRIDGE", "bridge"),
    column("BRIDGE INTERFACE", "bridge_interface"),
    column("PROJECT", "project"),
    column("HOST", "host"),
    column("VPN PUBLIC", "vpn_public_address"),
    column("VPN PORT", "vpn_public_port"),
    column("VPN PRIVATE", "vpn_private_address"),
    column("ADDRESSES", "size"),
    column("RESERVED", "reserved"),
    column("USED", "used"),
    column("FREE", "free"),
]

# The seed's positional form, in its order, and the named options that mirror it.
POSITIONAL = ("fixed_range", "num_networks", "network_size", "vlan_start", "vpn_start")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    network = commands.add_parser("network", help="create, list, show and delete networks")
    sub = network.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = sub.add_parser(
        "create",
        parents=[common],
        help="cut FIXED_RANGE into NUM_NETWORKS subnets of NETWORK_SIZE addresses",
        description="Defaults come from netcon.toml: fixed_range, num_networks, "
        "network_size, vlan_start, vpn_start.",
    )
    for name in POSITIONAL:
        create.add_argument(name, nargs="?", metavar=name.upper())
    for name in POSITIONAL:
        create.add_argument(
            f"--{name.replace('_', '-')}", f"--{name}", dest=f"named_{name}", metavar=name.upper()
        )
    create.add_argument("--label")
    create.add_argument("--manager", default="vlan", help="flat, flatdhcp or vlan (default vlan)")
    create.add_argument("--bridge", help="the admin's bridge (flat managers)")
    create.add_argument("--bridge-interface", help="interface enslaved into the bridge")
    create.add_argument("--dns", help="DNS server handed to instances")
    create.add_argument("--segmentation", help="vlan (802.1Q) or vxlan")
    create.set_defaults(handler=create_networks)

    listing = sub.add_parser("list", parents=[common], help="list networks")
    listing.add_argument("--project")
    listing.set_defaults(handler=list_networks)

    show = sub.add_parser("show", parents=[common], help="show one network")
    show.add_argument("network", metavar="ID|CIDR")
    show.set_defaults(handler=show_network)

    remove = sub.add_parser(
        "delete", parents=[common], help="delete a network with no addresses in use"
    )
    remove.add_argument("network", metavar="ID|CIDR")
    remove.set_defaults(handler=delete_network)


def create_networks(ctx: Context) -> None:
    args = ctx.args
    values: dict[str, str | None] = {}
    for name in POSITIONAL:
        positional, named = getattr(args, name), getattr(args, f"named_{name}")
        if positional is not None and named is not None:
            raise InvalidInput(name, "given both by position and as an option; give it once")
        values[name] = positional if positional is not None else named
    created = ctx.service.create_networks(
        values["fixed_range"],
        values["num_networks"],
        values["network_size"],
        values["vlan_start"],
        values["vpn_start"],
        label=args.label,
        manager=args.manager,
        bridge=args.bridge,
        bridge_interface=args.bridge_interface,
        dns=args.dns,
        segmentation=args.segmentation,
    )
    ctx.emit(created, COLUMNS)


def list_networks(ctx: Context) -> None:
    ctx.emit(ctx.service.list_networks(project=ctx.args.project), COLUMNS)


def show_network(ctx: Context) -> None:
    ctx.emit(ctx.service.get_network(ctx.args.network), DETAIL)


def delete_network(ctx: Context) -> None:
    gone = ctx.service.delete_network(ctx.args.network)
    ctx.say(f"deleted network {gone.cidr} ({gone.label})", deleted=gone.cidr)
