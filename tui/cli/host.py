"""`netcon host list|plan|apply` and `netcon dhcp-event` (called by dnsmasq)."""

from __future__ import annotations

import argparse
import sys

from core.errors import InvalidInput
from core.linux.host import can_change_host
from tui.cli.context import Context, column

COLUMNS = [
    column("HOST", "name"),
    column("ROLE", "role"),
    column("ALIVE", "alive"),
    column("LAST HEARTBEAT", "last_heartbeat"),
    column("NETWORKS", "networks"),
    column("FLOATING IPS", "floating_ips"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    host = commands.add_parser("host", help="network hosts; make this host match the database")
    sub = host.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = sub.add_parser("list", parents=[common], help="list network hosts")
    listing.set_defaults(handler=list_hosts)

    for action, text, handler in (
        ("plan", "show what apply would change on this host", plan_host),
        ("apply", "make this host match the database", apply_host),
    ):
        parser = sub.add_parser(action, parents=[common], help=text)
        parser.add_argument("--netns", help="act inside this network namespace (rehearsal)")
        if action == "apply":
            parser.add_argument(
                "--dry-run", action="store_true", help="only print the plan, like 'host plan'"
            )
        parser.set_defaults(handler=handler)

    event = commands.add_parser(
        "dhcp-event", parents=[common], help="a DHCP lease event (dnsmasq's --dhcp-script)"
    )
    event.add_argument("event", metavar="ACTION", help="add, old or del (init is ignored)")
    event.add_argument("mac", metavar="MAC", nargs="?")
    event.add_argument("address", metavar="IP", nargs="?")
    event.add_argument("hostname", metavar="HOSTNAME", nargs="?")
    event.set_defaults(handler=dhcp_event)


def list_hosts(ctx: Context) -> None:
    ctx.emit(ctx.service.list_hosts(), COLUMNS)


def _show(ctx: Context, lines: list[str], problems: tuple[str, ...]) -> None:
    if ctx.json:
        ctx.say("", operations=lines, problems=list(problems))
        return
    for line in lines:
        print(f"  {line}", file=ctx.out)
    if not lines:
        print("nothing to change", file=ctx.out)


def plan_host(ctx: Context) -> int:
    if not can_change_host():
        print(
            "netcon: without CAP_NET_ADMIN this plan shows only what can be read "
            "(links, addresses, dnsmasq; not the nftables table)",
            file=sys.stderr,
        )
    result = ctx.service.host_plan(ctx.args.netns)
    _show(ctx, result.describe(), result.problems)
    for problem in result.problems:
        print(f"netcon: {problem}", file=sys.stderr)
    return 1 if result.problems else 0


def apply_host(ctx: Context) -> int:
    if ctx.args.dry_run:
        return plan_host(ctx)
    result = ctx.service.host_apply(ctx.args.netns)
    _show(ctx, result.describe(), ())
    return 0


def dhcp_event(ctx: Context) -> int:
    a = ctx.args
    if a.event not in ("add", "old", "del"):
        # dnsmasq also calls the script with "init" (it wants a lease list; there is
        # none, --leasefile-ro keeps leases in the database) and "tftp": nothing to do.
        return 0
    if a.mac is None or a.address is None:
        raise InvalidInput("dhcp-event", f"{a.event} needs MAC and IP")
    ctx.service.dhcp_event(a.event, a.mac, a.address, a.hostname)
    return 0
