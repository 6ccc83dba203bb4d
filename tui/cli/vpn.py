"""`netcon vpn list` (the VPN of every VLAN network)."""

from __future__ import annotations

import argparse

from core.views import VpnView
from tui.cli.context import Context, column


def _endpoint(vpn: VpnView) -> str:
    return f"{vpn.public_address or '-'}:{vpn.public_port}"


COLUMNS = [
    column("PROJECT", "project"),
    ("IP:PORT", _endpoint),
    column("PRIVATE IP", "private_address"),
    column("NETWORK", "network"),
    column("STATE", "state"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    vpn = commands.add_parser("vpn", help="project VPNs")
    sub = vpn.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", parents=[common], help="list every project's VPN").set_defaults(
        handler=list_vpns
    )


def list_vpns(ctx: Context) -> None:
    ctx.emit(ctx.service.list_vpns(), COLUMNS)
