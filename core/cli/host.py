"""`netcon host list|plan|apply`."""

from __future__ import annotations

import sys
from typing import Any

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg, netns_arg

COLUMNS = (
    col("HOST", "name"),
    col("ALIVE"),
    col("LAST HEARTBEAT"),
    col("NETWORKS"),
    col("FLOATING IPS"),
    col("PENDING"),
    col("APPLIED", "applied_change"),
    col("LAST ERROR"),
)

group = Group("host", "network hosts; make this host match the database")


@group.command("list", "list network hosts")
def list_hosts(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_hosts(), COLUMNS)


def _show(ctx: Context, plan: Any) -> None:
    lines = [f"  {line}" for line in plan.describe()] or ["nothing to change"]
    ctx.output.lines(lines, {"operations": plan.describe(), "problems": list(plan.problems)})


@group.command("plan", "show what apply would change on this host", netns_arg())
def plan_host(ctx: Context) -> int:
    from core.linux.host import can_change_host

    if not can_change_host():
        print(
            "netcon: without CAP_NET_ADMIN this plan shows only what can be read "
            "(links, addresses, dnsmasq; not the nftables table)",
            file=sys.stderr,
        )
    plan = ctx.service.host_plan(ctx.args.netns)
    _show(ctx, plan)
    for problem in plan.problems:
        print(f"netcon: {problem}", file=sys.stderr)
    return 1 if plan.problems else 0


@group.command(
    "apply",
    "make this host match the database",
    netns_arg(),
    arg("--dry-run", action="store_true", help="only print the plan, like 'host plan'"),
)
def apply_host(ctx: Context) -> int:
    if ctx.args.dry_run:
        return plan_host(ctx)
    _show(ctx, ctx.service.host_apply(ctx.args.netns))
    return 0


@group.command(
    "evacuate",
    "move a down host's networks and floating IPs to live hosts",
    arg("host", metavar="DEAD", complete="host"),
    arg("--to", metavar="LIVE", complete="host", help="the host to move them to (default: spread)"),
)
def evacuate_host(ctx: Context) -> None:
    moved = ctx.service.evacuate_host(ctx.args.host, ctx.args.to)
    lines = [f"  {cidr} -> {host}" for cidr, host in moved.networks]
    lines += [f"  floating {address} -> {host}" for address, host in moved.floating]
    ctx.output.lines(
        [f"evacuated {moved.host}:", *lines] if lines else [f"{moved.host} held nothing"],
        {
            "host": moved.host,
            "networks": [{"network": c, "host": h} for c, h in moved.networks],
            "floating": [{"address": a, "host": h} for a, h in moved.floating],
        },
    )
