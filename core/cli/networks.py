"""`netcon network create|list|show|delete`."""

from __future__ import annotations

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg
from core.errors import InvalidInput

COLUMNS = (
    col("ID"),
    col("LABEL"),
    col("MANAGER"),
    col("CIDR"),
    col("VLAN"),
    col("BRIDGE"),
    col("GATEWAY"),
    col("PROJECT"),
    col("HOST"),
    col("USED"),
    col("FREE"),
)

DETAIL = (
    *COLUMNS[:5],
    col("SEGMENTATION"),
    col("NETMASK"),
    col("GATEWAY"),
    col("BROADCAST"),
    col("DHCP START"),
    col("DNS", "dns1"),
    col("BRIDGE"),
    col("BRIDGE INTERFACE"),
    col("PROJECT"),
    col("HOST"),
    col("MULTI HOST"),
    col("MTU"),
    col("LEASE TIME", "dhcp_lease_time"),
    col("VPN PUBLIC", "vpn_public_address"),
    col("VPN PORT", "vpn_public_port"),
    col("VPN PRIVATE", "vpn_private_address"),
    col("IPV6 CIDR", "cidr_v6"),
    col("IPV6 GATEWAY", "gateway_v6"),
    col("IPV6 MODE", "ipv6_mode"),
    col("ADDRESSES", "size"),
    col("RESERVED"),
    col("USED"),
    col("FREE"),
)

# The seed's positional form, in its order, and the named options that mirror it.
POSITIONAL = (
    "fixed_range", "num_networks", "network_size", "vlan_start", "vpn_start", "fixed_range_v6"
)

group = Group("network", "create, list, show and delete networks")


@group.command(
    "create",
    "cut FIXED_RANGE into NUM_NETWORKS subnets of NETWORK_SIZE addresses",
    *(arg(name, nargs="?", metavar=name.upper()) for name in POSITIONAL),
    *(
        arg(f"--{name.replace('_', '-')}", f"--{name}", dest=f"named_{name}", metavar=name.upper())
        for name in POSITIONAL
    ),
    arg("--label"),
    arg(
        "--manager",
        default="vlan",
        complete=("flat", "flatdhcp", "vlan"),
        help="flat, flatdhcp or vlan (default vlan)",
    ),
    arg("--bridge", help="the admin's bridge (flat managers)"),
    arg("--bridge-interface", help="interface enslaved into the bridge"),
    arg("--dns", help="DNS server handed to instances"),
    arg("--segmentation", complete=("vlan", "vxlan"), help="vlan (802.1Q) or vxlan"),
    arg(
        "--multi-host",
        action="store_true",
        help="served by every host with its instances (gateway, DHCP and NAT on each)",
    ),
    arg(
        "--ipv6-mode",
        complete=("slaac", "dhcpv6-stateful", "dhcpv6-stateless"),
        help="how guests get IPv6 addresses: slaac (default), dhcpv6-stateful, dhcpv6-stateless",
    ),
    description="Defaults come from netcon.toml: fixed_range, num_networks, network_size, "
    "vlan_start, vpn_start, fixed_range_v6 (each network gets the next free /64 of it; "
    "none: IPv4 only), ipv6_mode.",
)
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
        values["fixed_range_v6"],
        ipv6_mode=args.ipv6_mode,
        label=args.label,
        manager=args.manager,
        bridge=args.bridge,
        bridge_interface=args.bridge_interface,
        dns=args.dns,
        segmentation=args.segmentation,
        multi_host=args.multi_host,
    )
    ctx.output.rows(created, COLUMNS)


@group.command("list", "list networks", arg("--project", complete="project"))
def list_networks(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_networks(project=ctx.args.project), COLUMNS)


@group.command("show", "show one network", arg("network", metavar="ID|CIDR", complete="network"))
def show_network(ctx: Context) -> None:
    ctx.output.one(ctx.service.get_network(ctx.args.network), DETAIL)


@group.command(
    "delete",
    "delete a network with no addresses in use",
    arg("network", metavar="ID|CIDR", complete="network"),
)
def delete_network(ctx: Context) -> None:
    gone = ctx.service.delete_network(ctx.args.network)
    ctx.output.outcome(gone, DETAIL, f"deleted network {gone.cidr} ({gone.label})")


@group.command(
    "modify",
    "change a network's DNS servers, MTU, lease time, IPv6, host, project or segmentation",
    arg("network", metavar="ID|CIDR", complete="network"),
    arg("--dns1", metavar="IP", help="first DNS server guests get ('' for the default)"),
    arg("--dns2", metavar="IP", help="second DNS server ('' for none)"),
    arg("--mtu", help="the MTU guests get ('' for the default: physical MTU less overhead)"),
    arg("--dhcp-lease-time", metavar="SECONDS", help="DHCP lease time ('' for the default)"),
    arg(
        "--fixed-range-v6",
        metavar="CIDR",
        help="give the network this IPv6 /64 ('' to make it IPv4-only again)",
    ),
    arg(
        "--ipv6-mode",
        complete=("slaac", "dhcpv6-stateful", "dhcpv6-stateless"),
        help="slaac, dhcpv6-stateful or dhcpv6-stateless",
    ),
    arg("--host", complete="host", help="move the network to this live host"),
    arg("--disassociate-host", action="store_true", help="no host (picked again when needed)"),
    arg("--project", complete="project", help="give this VLAN network to a project"),
    arg("--disassociate-project", action="store_true", help="take it from its project"),
    arg(
        "--segmentation", complete=("vlan", "vxlan"),
        help="vlan (802.1Q) or vxlan, same id; only while no instance is plugged",
    ),
)
def modify_network(ctx: Context) -> None:
    a = ctx.args
    given = {
        name: getattr(a, name)
        for name in ("dns1", "dns2", "mtu", "dhcp_lease_time", "fixed_range_v6")
        if getattr(a, name) is not None
    }
    last = ctx.service.last_change
    changed = ctx.service.modify_network(
        a.network,
        host=a.host,
        project=a.project,
        ipv6_mode=a.ipv6_mode,
        disassociate_host=a.disassociate_host,
        disassociate_project=a.disassociate_project,
        segmentation=a.segmentation,
        **given,
    )
    if ctx.service.last_change is last:  # nothing was written
        message = f"network {changed.cidr}: nothing to change; it already has what was asked"
        ctx.output.outcome(changed, DETAIL, message)
        return
    ctx.output.one(changed, DETAIL)
