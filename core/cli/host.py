"""`netcon host list|plan|apply`."""

from __future__ import annotations

import sys
from typing import Any

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg, netns_arg
from core.errors import InvalidInput

COLUMNS = (
    col("HOST", "name"),
    col("ALIVE"),
    col("LAST HEARTBEAT"),
    col("NETWORKS"),
    col("FLOATING IPS"),
    col("VPN IP"),
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
    ctx.output.lines(
        lines,
        {
            "operations": plan.describe(),
            "problems": list(plan.problems),
            "partial": plan.partial,
            "warnings": list(plan.warnings),
        },
    )
    # Said on every plan and apply until fixed, though nothing waits for them.
    for warning in plan.warnings:
        print(f"netcon: warning: {warning}", file=sys.stderr)


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
    arg(
        "--no-wait",
        action="store_true",
        help="if another apply is changing this host, fail at once instead of waiting for "
        "it (--lock-timeout says how long to wait)",
    ),
)
def apply_host(ctx: Context) -> int:
    if ctx.args.dry_run:
        return plan_host(ctx)
    given = getattr(ctx.args, "lock_timeout", None) is not None
    if ctx.args.no_wait and given:
        raise InvalidInput("--no-wait", "give --no-wait or --lock-timeout, not both")
    # One apply at a time per host: --lock-timeout (default 30 s) is how long this one
    # waits for another, as it is for a change waiting for another writer.
    timeout = 0.0 if ctx.args.no_wait else ctx.lock_timeout
    told = [0.0]

    def waiting(holder: Any, waited: float) -> None:
        # Said after a second of waiting, then every five: who holds it, since when.
        if told[0] and waited - told[0] < 5:
            return
        told[0] = waited
        who = holder.describe() if holder is not None else "a process that has not said who"
        print(
            f"netcon: waiting for another apply, {who}: {waited:.0f} s of {timeout:.0f} s "
            "(--lock-timeout)",
            file=sys.stderr,
        )

    done = ctx.service.host_apply(ctx.args.netns, lock_timeout=timeout, on_wait=waiting)
    _show(ctx, done)
    return 0


@group.command(
    "evacuate",
    "move a down host's networks, floating IPs and multi-host instances to live hosts",
    arg("host", metavar="DEAD", complete="host"),
    arg("--to", metavar="LIVE", complete="host", help="the host to move them to (default: spread)"),
)
def evacuate_host(ctx: Context) -> None:
    moved = ctx.service.evacuate_host(ctx.args.host, ctx.args.to)
    lines = [f"  {cidr} -> {host}" for cidr, host in moved.networks]
    lines += [f"  floating {address} -> {host}" for address, host in moved.floating]
    lines += [f"  instance {name} -> {host}" for name, host in moved.instances]
    ctx.output.lines(
        [f"evacuated {moved.host}:", *lines] if lines else [f"{moved.host} held nothing"],
        {
            "host": moved.host,
            "networks": [{"network": c, "host": h} for c, h in moved.networks],
            "floating": [{"address": a, "host": h} for a, h in moved.floating],
            "instances": [{"instance": n, "host": h} for n, h in moved.instances],
        },
    )
