"""`netcon floating create|delete|list|show|allocate|associate|disassociate|release`."""

from __future__ import annotations

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg

COLUMNS = (
    col("ADDRESS"),
    col("POOL"),
    col("HOST"),
    col("INTERFACE"),
    col("PROJECT"),
    col("INSTANCE"),
    col("FIXED IP", "fixed_address"),
)
RANGE = (
    col("RANGE"),
    col("ADDRESSES"),
    col("POOL"),
    col("HOST"),
    col("INTERFACE"),
)

group = Group("floating", "the pool of public addresses")


@group.command(
    "create",
    "add a range of floating IPs for a host",
    arg("host", complete="host"),
    arg("ip_range", metavar="IP_RANGE", help="a CIDR, A-B, or one address"),
    arg("--pool", complete="pool"),
    arg("--interface", help="public interface the addresses live on"),
)
def create_range(ctx: Context) -> None:
    a = ctx.args
    made = ctx.service.create_floating_range(a.host, a.ip_range, pool=a.pool, interface=a.interface)
    ctx.output.outcome(
        made, RANGE, f"created {made.addresses} floating IP(s) in {made.range} for {made.host}"
    )


@group.command(
    "delete",
    "delete a range of free floating IPs",
    arg("ip_range", metavar="IP_RANGE", complete="floating"),
)
def delete_range(ctx: Context) -> None:
    gone = ctx.service.delete_floating_range(ctx.args.ip_range)
    ctx.output.outcome(gone, RANGE, f"deleted {gone.addresses} floating IP(s) in {gone.range}")


@group.command(
    "list",
    "list floating IPs",
    arg("--host", complete="host"),
    arg("--project", complete="project"),
    arg("--pool", complete="pool"),
)
def list_floating(ctx: Context) -> None:
    a = ctx.args
    if ctx.json:
        keys = [c.key for c in COLUMNS]
        ctx.output.text(ctx.service.floating_ips_json(keys, a.host, a.project, a.pool))
    else:
        ctx.output.rows(ctx.service.list_floating_ips(a.host, a.project, a.pool), COLUMNS)


@group.command("show", "show one floating IP", arg("address", complete="floating"))
def show_floating(ctx: Context) -> None:
    ctx.output.one(ctx.service.get_floating_ip(ctx.args.address), COLUMNS)


@group.command(
    "allocate",
    "give a project a floating IP",
    arg("--project", required=True, complete="project"),
    arg("--pool", complete="pool"),
)
def allocate_floating(ctx: Context) -> None:
    floating = ctx.service.allocate_floating_ip(ctx.args.project, pool=ctx.args.pool)
    # Scripts capture the address: without --json it is printed alone.
    ctx.output.outcome(floating, COLUMNS, floating.address)


@group.command(
    "associate",
    "NAT a floating IP to an instance (moving it if it is associated elsewhere)",
    arg("address", complete="floating"),
    arg("instance", complete="instance"),
    arg("--fixed-address", help="which of the instance's fixed IPs"),
    arg(
        "--no-move",
        action="store_true",
        help="refuse if the address is associated with another instance, instead of moving it",
    ),
)
def associate_floating(ctx: Context) -> None:
    a = ctx.args
    # Read first only to say where it came from; the association checks afresh.
    before = None if a.no_move else ctx.service.get_floating_ip(a.address).instance
    floating = ctx.service.associate_floating_ip(
        a.address, a.instance, fixed_address=a.fixed_address, move=not a.no_move
    )
    now = f"{floating.instance} ({floating.fixed_address})"
    said = f"moved {floating.address} from {before} to {now}" if before else None
    ctx.output.outcome(floating, COLUMNS, said or f"associated {floating.address} with {now}")


@group.command("disassociate", "remove a floating IP's NAT", arg("address", complete="floating"))
def disassociate_floating(ctx: Context) -> None:
    floating = ctx.service.disassociate_floating_ip(ctx.args.address)
    ctx.output.outcome(floating, COLUMNS, f"disassociated {floating.address}")


@group.command(
    "release", "give a floating IP back to the pool", arg("address", complete="floating")
)
def release_floating(ctx: Context) -> None:
    floating = ctx.service.release_floating_ip(ctx.args.address)
    ctx.output.outcome(floating, COLUMNS, f"released {floating.address}")
