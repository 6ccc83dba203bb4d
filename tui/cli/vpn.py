"""`netcon vpn list | run PROJECT | spawn | stop PROJECT | client-config PROJECT USER |
revoke PROJECT USER`: project VPNs on this network host."""

from __future__ import annotations

import argparse

from core.views import VpnView
from tui.cli.context import Context, column


def _endpoint(row: VpnView) -> str:
    return f"{row.public_address or '*'}:{row.public_port}"


COLUMNS = [
    column("PROJECT", "project"),
    ("IP:PORT", _endpoint),
    column("PRIVATE IP", "private_address"),
    column("NETWORK", "network"),
    column("STATE", "state"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("vpn", help="project VPNs")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    netns = argparse.ArgumentParser(add_help=False)
    netns.add_argument(
        "--netns", metavar="NAME", help="act in this network namespace (rehearsals, tests)"
    )

    sub.add_parser(
        "list", parents=[common, netns], help="every project's VPN; up only if its server answers"
    ).set_defaults(handler=list_vpns)

    run = sub.add_parser("run", parents=[common, netns], help="start the VPN of a project")
    run.add_argument("project")
    run.set_defaults(handler=run_vpn)

    sub.add_parser(
        "spawn", parents=[common, netns], help="start the VPN of every VLAN project"
    ).set_defaults(handler=spawn_vpns)

    stop = sub.add_parser("stop", parents=[common, netns], help="stop the VPN of a project")
    stop.add_argument("project")
    stop.set_defaults(handler=stop_vpn)

    config = sub.add_parser(
        "client-config",
        parents=[common],
        help="issue a client certificate and print the user's .ovpn file",
    )
    config.add_argument("project")
    config.add_argument("user")
    config.set_defaults(handler=client_config)

    revoke = sub.add_parser(
        "revoke", parents=[common], help="revoke a user's certificate; the server refuses it"
    )
    revoke.add_argument("project")
    revoke.add_argument("user")
    revoke.set_defaults(handler=revoke_user)


def list_vpns(ctx: Context) -> None:
    ctx.emit(ctx.service.list_vpns(ctx.args.netns), COLUMNS)


def _report(ctx: Context, steps: list[str]) -> None:
    if not steps:
        ctx.say("nothing to do: the VPN already runs as wanted", steps=[])
        return
    if ctx.json:
        ctx.say("", steps=steps)
        return
    for step in steps:
        ctx.say(step)


def run_vpn(ctx: Context) -> None:
    _report(ctx, ctx.service.run_vpn(ctx.args.project, ctx.args.netns))


def spawn_vpns(ctx: Context) -> None:
    _report(ctx, ctx.service.spawn_vpns(ctx.args.netns))


def stop_vpn(ctx: Context) -> None:
    _report(ctx, ctx.service.stop_vpn(ctx.args.project, ctx.args.netns))


def client_config(ctx: Context) -> None:
    text = ctx.service.vpn_client_config(ctx.args.project, ctx.args.user)
    if ctx.json:
        ctx.say("", project=ctx.args.project, user=ctx.args.user, ovpn=text)
    else:
        ctx.out.write(text)


def revoke_user(ctx: Context) -> None:
    serial = ctx.service.revoke_vpn_user(ctx.args.project, ctx.args.user)
    ctx.say(
        f"revoked {ctx.args.user} of project {ctx.args.project} (serial {serial:x})",
        project=ctx.args.project,
        user=ctx.args.user,
        serial=f"{serial:x}",
    )
