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
    col("ROLE"),
    col("ALIVE"),
    col("LAST HEARTBEAT"),
    col("NETWORKS"),
    col("FLOATING IPS"),
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


def _lock_timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86400:
        raise InvalidInput("--lock-timeout", f"{value[:80]!r} is not a number of seconds 0-86400")
    return seconds


@group.command(
    "apply",
    "make this host match the database",
    netns_arg(),
    arg("--dry-run", action="store_true", help="only print the plan, like 'host plan'"),
    arg(
        "--no-wait",
        action="store_true",
        help="if another apply is running on this host, fail at once instead of waiting",
    ),
    arg(
        "--lock-timeout",
        default=None,
        metavar="SECONDS",
        help="how long to wait for another apply on this host (default 30)",
    ),
)
def apply_host(ctx: Context) -> int:
    from core.service.host import LOCK_TIMEOUT

    if ctx.args.dry_run:
        return plan_host(ctx)
    if ctx.args.no_wait and ctx.args.lock_timeout is not None:
        raise InvalidInput("--no-wait", "give --no-wait or --lock-timeout, not both")
    timeout = LOCK_TIMEOUT
    if ctx.args.no_wait:
        timeout = 0.0
    elif ctx.args.lock_timeout is not None:
        timeout = _lock_timeout(ctx.args.lock_timeout)
    told = [0.0]

    def waiting(holder: Any, waited: float) -> None:
        # Said after a second of waiting, then every five: who holds it, since when.
        if waited - told[0] < 5 and told[0]:
            return
        told[0] = waited
        who = holder.describe() if holder is not None else "a process that has not said who"
        print(f"netcon: waiting for another apply: {who}; waited {waited:.0f} s", file=sys.stderr)

    done = ctx.service.host_apply(
        ctx.args.netns,
        lock_timeout=timeout,
        on_wait=waiting,
    )
    _show(ctx, done)
    return 0
