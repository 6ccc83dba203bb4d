"""Snapshots of every view and every dialog, at 80x24 (and the wide layout at 120x40).

Update after a deliberate change of the look with ``pytest tests/tui --snapshot-update``
and review the SVGs under ``__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.tui.conftest import steps
from tui.app import NetconApp

Snap = Callable[..., bool]

VIEW_COMMANDS = {
    "projects": ("colon", *"projects", "enter"),
    "networks": (),
    "fixed": ("enter",),
    "floating": ("colon", *"fip", "enter"),
    "vpn": ("colon", *"vpn", "enter"),
    "instances": ("colon", *"instances", "enter"),
    "secgroups": ("colon", *"secgroups", "enter"),
    "hosts": ("colon", *"hosts", "enter"),
    "audit": ("colon", *"audit", "enter"),
}


@pytest.mark.parametrize("view", list(VIEW_COMMANDS))
def test_view(view: str, snap_compare: Snap, make_app: Callable[..., NetconApp]) -> None:
    assert snap_compare(make_app(), run_before=steps(*VIEW_COMMANDS[view]))


def test_secgroup_rules_in_detail(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    # alpha/web is the group with two rules; the detail pane lists them.
    keys = ("colon", *"secgroups", "enter", "slash", *"web", "enter")
    assert snap_compare(make_app(), run_before=steps(*keys))


def test_drill_project_to_networks(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="projects"), run_before=steps("enter"))


def test_drill_floating_to_instance(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="floating"), run_before=steps("enter"))


def test_filter(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(), run_before=steps("slash", *"flat"))


def test_command_line_completion(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(), run_before=steps("colon", *"sec"))


def test_sorted(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    # s: CIDR ascending, s: descending.
    assert snap_compare(make_app(), run_before=steps("s", "s"))


def test_help(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(), run_before=steps("question_mark"))


def test_wide_layout(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="instances"), run_before=steps(), terminal_size=(120, 40))


def test_read_only(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="floating", read_only=True), run_before=steps())


def test_ansi_dark(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(theme="ansi-dark"), run_before=steps())


DIALOGS = {
    "create_network": ("networks", ("n",)),
    "create_network_invalid": ("networks", ("n", *"10.0.0.1/16", "tab", *"0")),
    "delete_network": ("networks", ("D",)),
    "create_project": ("projects", ("n",)),
    "delete_project": ("projects", ("down", "down", "D")),
    "reserve_fixed_ip": ("fixed", ("r",)),
    "allocate_floating": ("floating", ("n",)),
    "associate_floating": ("floating", ("down", "down", "a")),
    "disassociate_floating": ("floating", ("x",)),
    "release_floating": ("floating", ("D",)),
    "create_floating_range": ("floating", ("c",)),
    "delete_floating_range": ("floating", ("X",)),
    "delete_floating_range_confirm": ("floating", ("X", "enter")),
    "launch_instance": ("instances", ("n",)),
    "terminate_instance": ("instances", ("D",)),
    "create_secgroup": ("secgroups", ("n",)),
    "delete_secgroup": ("secgroups", ("down", "D")),
    "add_rule": ("secgroups", ("a",)),
    "remove_rule": ("secgroups", ("down", "x")),
    "stop_vpn": ("vpn", ("X",)),
    "vpn_client_config": ("vpn", ("c",)),
    "vpn_client_config_invalid": ("vpn", ("c", *"al ice")),
    "revoke_vpn_user": ("vpn", ("R",)),
    "revoke_vpn_user_confirm": ("vpn", ("R", *"alice", "enter")),
}


@pytest.mark.parametrize("dialog", list(DIALOGS))
def test_dialog(dialog: str, snap_compare: Snap, make_app: Callable[..., NetconApp]) -> None:
    start, keys = DIALOGS[dialog]
    if start == "fixed":
        start, keys = "networks", ("enter", *keys)
    assert snap_compare(make_app(start=start), run_before=steps(*keys))


def test_host_plan(snap_compare: Snap, make_app: Callable[..., NetconApp]) -> None:
    """The plan dialog, on a plan built from the host layer's own operation types (the
    real plan depends on the machine running the tests)."""
    from core.linux.operations import AddAddress, CreateBridge, Plan
    from tui.screens.hostplan import PlanScreen

    plan = Plan(
        operations=(
            CreateBridge("br100"),
            AddAddress(ifname="br100", address="10.0.0.1", prefixlen=24),
        ),
        problems=(),
    )

    async def run_before(pilot: Any) -> None:
        await steps()(pilot)
        await pilot.app.push_screen(PlanScreen("nethost1", plan, can_apply=True))
        await steps()(pilot)

    assert snap_compare(make_app(start="hosts"), run_before=run_before)


# A stand-in with the .ovpn's shape: a real one holds fresh random keys every run.
STUB_CLIENT_CONFIG = "\n".join(
    [
        "# netcon VPN of project alpha: user alice",
        "client",
        "dev tap",
        "proto udp",
        "remote 192.0.2.10 1000",
        "remote-cert-tls server",
        "<ca>",
        "-----BEGIN CERTIFICATE-----",
        *[f"{'STUB' * 16}" for _ in range(6)],
        "-----END CERTIFICATE-----",
        "</ca>",
        "<key>",
        "-----BEGIN PRIVATE KEY-----",
        *[f"{'KEY0' * 16}" for _ in range(6)],
        "-----END PRIVATE KEY-----",
        "</key>",
    ]
)


def test_client_config_dialog(snap_compare: Snap, make_app: Callable[..., NetconApp]) -> None:
    from tui.widgets.dialogs import ClientConfigDialog

    async def run_before(pilot: Any) -> None:
        await steps()(pilot)
        await pilot.app.push_screen(ClientConfigDialog("alpha", "alice", STUB_CLIENT_CONFIG))
        await steps()(pilot)

    assert snap_compare(make_app(start="vpn"), run_before=run_before)


def test_palette(snap_compare: Snap, make_app: Callable[..., NetconApp]) -> None:
    assert snap_compare(make_app(start="floating"), run_before=steps("ctrl+p", *"assoc"))
