"""`netcon fixed list|reserve|unreserve`."""

from __future__ import annotations

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg

COLUMNS = (
    col("NETWORK"),
    col("ADDRESS"),
    col("MAC"),
    col("INSTANCE"),
    col("PROJECT"),
    col("STATE"),
    col("HOST"),  # the host a multi-host network is served from there
)

group = Group("fixed", "list, reserve and unreserve fixed IPs")


@group.command(
    "list",
    "list fixed IPs",
    arg("--network", metavar="ID|CIDR", complete="network"),
    arg("--project", complete="project"),
    arg("--search", help="part of an address, MAC or instance name"),
    arg("--in-use", action="store_true", help="only addresses held by instances or leases"),
)
def list_fixed(ctx: Context) -> None:
    a = ctx.args
    page = ctx.service.list_fixed_ips(
        network=a.network, project=a.project, search=a.search, in_use=a.in_use
    )
    ctx.output.rows(page.rows, COLUMNS)


@group.command("reserve", "keep an address from instances", arg("address"))
def reserve(ctx: Context) -> None:
    fixed = ctx.service.reserve_fixed_ip(ctx.args.address)
    ctx.output.outcome(fixed, COLUMNS, f"reserved {fixed.address}")


@group.command("unreserve", "give a reserved address back", arg("address"))
def unreserve(ctx: Context) -> None:
    fixed = ctx.service.unreserve_fixed_ip(ctx.args.address)
    ctx.output.outcome(fixed, COLUMNS, f"unreserved {fixed.address}")
