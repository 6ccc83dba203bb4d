"""Snapshots of every view and every dialog at 80x24 and 120x40, the prompt with its
completion, the footer, marks, a bulk confirmation and pending host changes.

Update after a deliberate change of the look with ``pytest tests/tui --snapshot-update``
and review the SVGs under ``__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.views import PlannedOperation, PlanView
from tests.tui.conftest import demo_plan, fixed_pending, settle, steps
from tui.app import NetconApp
from tui.settings import ConsoleSettings, ContextStyle

Snap = Callable[..., bool]
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}

VIEW_KEYS = {
    "projects": ("colon", *"projects", "enter"),
    "networks": (),
    "fixed": ("enter",),
    "floating": ("colon", *"fip", "enter"),
    "vpn": ("colon", *"vpn", "enter"),
    "vpnusers": ("colon", *"vpn", "enter", "enter"),
    "instances": ("colon", *"instances", "enter"),
    "secgroups": ("colon", *"secgroups", "enter"),
    "rules": ("colon", *"secgroups", "enter", "slash", *"web", "enter", "enter"),
    "hosts": ("colon", *"hosts", "enter"),
    "audit": ("colon", *"audit", "enter"),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("view", list(VIEW_KEYS))
def test_view(view: str, size: str, snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    app = make_app(pending_source=fixed_pending(demo_plan()))
    assert snap_compare(app, run_before=steps(*VIEW_KEYS[view]), terminal_size=SIZES[size])


def test_drill_project_to_networks(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    # Enter opens a project's instances; N its networks.
    assert snap_compare(make_app(start="projects"), run_before=steps("N"))


def test_filter_negated(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="floating"), run_before=steps("slash", *"!alpha"))


def test_filter_regex_on_state(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    keys = ("enter", "slash", *"^(allocated", "vertical_line", *"reserved)$")
    assert snap_compare(make_app(), run_before=steps(*keys))


def test_command_line_completion(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(), run_before=steps("colon", *"se", "tab"))


def test_sorted(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(), run_before=steps("s", "s"))


def test_help(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="floating"), run_before=steps("question_mark"))


def test_read_only(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="floating", read_only=True), run_before=steps())


def test_context_colour_and_label(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    settings = ConsoleSettings(
        contexts=(ContextStyle("prod", "sqlite:///*", "PRODUCTION", "darkred"),)
    )
    assert snap_compare(make_app(settings=settings), run_before=steps())


def test_ansi_dark(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(theme="ansi-dark"), run_before=steps())


def test_marks(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="floating"), run_before=steps("space", "space", "down"))


def test_bulk_confirmation(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    keys = ("space", "space", "space", "x")
    assert snap_compare(make_app(start="floating"), run_before=steps(*keys))


def test_palette(snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    assert snap_compare(make_app(start="floating"), run_before=steps("ctrl+p", *"assoc"))


def test_empty_database(snap_compare: Snap, tmp_path: Any, monkeypatch: Any) -> None:
    from core.config import load_settings
    from core.service import NetconService
    from tests.tui.conftest import FIXED_TIME

    monkeypatch.chdir(tmp_path)
    service = NetconService("sqlite:///empty.db", load_settings(paths=[], host="nethost1"))
    app = NetconApp(service, clock=lambda: FIXED_TIME, refresh_interval=0, pending_source=None)
    assert snap_compare(app, run_before=steps())
    service.db.dispose()


DIALOGS = {
    "create_network": ("networks", ("n",)),
    "create_network_invalid": ("networks", ("n", *"10.0.0.1/16", "tab", *"0")),
    "create_network_refused": ("networks", ("n", *"10.0.0.0/24", "enter")),
    "delete_network": ("networks", ("D",)),
    "create_project": ("projects", ("n",)),
    "launch_here": ("projects", ("L",)),
    "delete_project": ("projects", ("G", "D")),
    "allocate_floating": ("floating", ("n",)),
    "associate_floating": ("floating", ("down", "down", "a")),
    "disassociate_floating": ("floating", ("x",)),
    "release_floating": ("floating", ("down", "down", "D")),
    "create_floating_range": ("floating", ("c",)),
    "delete_floating_range": ("floating", ("X",)),
    "delete_floating_range_confirm": ("floating", ("X", "enter")),
    "launch_instance": ("instances", ("n",)),
    "instance_in_full": ("instances", ("enter",)),
    "terminate_instance": ("instances", ("D",)),
    "create_secgroup": ("secgroups", ("n",)),
    "delete_secgroup": ("secgroups", ("down", "D")),
    "add_rule": ("secgroups", ("a",)),
    "stop_vpn": ("vpn", ("X",)),
    "vpn_client_config": ("vpn", ("c",)),
    "vpn_client_config_invalid": ("vpn", ("c", *"al ice")),
    "revoke_vpn_user": ("vpn", ("R",)),
    "revoke_vpn_user_confirm": ("vpn", ("R", *"alice", "enter")),
    "audit_event": ("audit", ("G", "enter")),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("dialog", list(DIALOGS))
def test_dialog(
    dialog: str, size: str, snap_compare: Snap, make_app: Callable[..., NetconApp]
) -> None:
    start, keys = DIALOGS[dialog]
    assert snap_compare(make_app(start=start), run_before=steps(*keys),
                        terminal_size=SIZES[size])


def _plan(problems: tuple[str, ...]) -> PlanView:
    operations = tuple(
        PlannedOperation(f"add address 10.0.{n}.1/24 to br{100 + n}", ())
        for n in range(24)
    )
    return PlanView("nethost1", operations, problems)


@pytest.mark.parametrize(
    "case",
    ["apply", "problems", "scrolled"],
)
def test_host_plan(case: str, snap_compare: Snap, make_app: Callable[..., NetconApp]) -> None:
    """The plan dialog, on fixed plans (the real plan depends on the machine running the
    tests): one that can be applied, one that cannot and says why, one scrolled down."""
    from tui.screens.plan import PlanScreen

    problems = ("network 10.0.0.0/24: vlan_interface eth1 does not exist",)
    plan = _plan(problems if case == "problems" else ())

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.app.push_screen(PlanScreen(pilot.app.service.get(), plan, can_apply=True))
        await settle(pilot)
        if case == "scrolled":
            await pilot.press("pagedown", "down")
            await settle(pilot)

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
        await settle(pilot)
        await pilot.app.push_screen(ClientConfigDialog("alpha", "alice", STUB_CLIENT_CONFIG))
        await settle(pilot)

    assert snap_compare(make_app(start="vpn"), run_before=run_before)


@pytest.mark.parametrize("view", ["secgroups", "rules"])
def test_security_rows_pending(
    view: str, snap_compare: Snap, make_app: Callable[..., NetconApp], demo_service: Any
) -> None:
    """A rule added to alpha/web that this host's filter still lacks: the group's row
    and that rule's row carry `~`."""
    from core.linux.operations import Plan
    from core.linux.secgroups.operations import AddRuleElement
    from core.service.host import _plan_view

    demo_service.add_security_group_rule("alpha", "web", "tcp", 8443, 8443, cidr="0.0.0.0/0")
    group = next(g for g in demo_service.list_security_groups("alpha") if g.name == "web")
    owed = AddRuleElement(group.id, "alpha/web", "ports", "0.0.0.0/0 . 6 . 8443",
                          "tcp 8443 from 0.0.0.0/0")
    plan = _plan_view("nethost1", Plan(operations=(owed,)))
    app = make_app(pending_source=fixed_pending(plan))
    keys = VIEW_KEYS[view] + (("end",) if view == "rules" else ())
    assert snap_compare(app, run_before=steps(*keys), terminal_size=SIZES["80x24"])
