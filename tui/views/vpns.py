"""Project VPNs: one OpenVPN server per VLAN network; Enter lists its users."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from core import validate
from core.views import VpnView
from tui.views.base import (
    Column,
    Confirm,
    Drill,
    Field,
    Form,
    Outcome,
    RowAction,
    Values,
    ViewSpec,
    lines,
    text,
)

if TYPE_CHECKING:
    from textual.screen import Screen

    from core.service.api import NetconAPI


def _public(v: VpnView) -> str:
    if not v.public_address:
        return "-"
    return f"{v.public_address}:{v.public_port}"


def user_form(project: str) -> Form:
    # The core's own rule for user names (they become certificate file names).
    return Form(
        f"Client configuration for a user of {project}",
        (Field("user", "User", partial(validate.name, "user")),),
        "Issue",
        "Issues the user's certificate, or reuses the one already issued.",
    )


def client_config(api: NetconAPI, project: str, user: str) -> Outcome:
    # Shown in a dialog, never in a notification or a log: it holds the private key.
    config = api.vpn_client_config(project, user)

    def show() -> Screen[object]:
        from tui.widgets.dialogs import ClientConfigDialog

        return ClientConfigDialog(project, user, config)

    return Outcome(f"Client configuration of {user} in {project} issued", show)


def revoke(api: NetconAPI, project: str, user: str) -> Outcome:
    serial = api.revoke_vpn_user(project, user)
    return Outcome(f"Revoked {user} in {project} (certificate {serial:x})")


def _no_project(v: VpnView) -> str | None:
    if v.project is None:
        return f"{v.network} has no project yet: a VPN runs for a project's network"
    return None


def _run(api: NetconAPI, v: VpnView, values: Values) -> Outcome:
    project = str(v.project)
    steps = api.run_vpn(project)
    return Outcome("; ".join(steps) or f"VPN of {project} already runs")


def _stop(api: NetconAPI, v: VpnView, values: Values) -> Outcome:
    project = str(v.project)
    steps = api.stop_vpn(project)
    return Outcome("; ".join(steps) or f"VPN of {project} was not running")


def _config(api: NetconAPI, v: VpnView, values: Values) -> Outcome:
    return client_config(api, str(v.project), values.text("user"))


def _revoke(api: NetconAPI, v: VpnView, values: Values) -> Outcome:
    return revoke(api, str(v.project), values.text("user"))


def _where(v: VpnView) -> str:
    return f"{v.public_address}:{v.public_port}" if v.public_address else v.network


def _form(v: VpnView, make: Callable[[str], Form]) -> Form:
    return make(str(v.project))


VPNS: ViewSpec[VpnView] = ViewSpec(
    name="vpn",
    title="VPNs",
    aliases=("vpn", "vpns", "cloudpipe"),
    noun=("VPN", "VPNs"),
    columns=(
        Column("project", "Project", 12),
        Column("public", "Public", 21, priority=1, min_width=21),
        Column("private", "Private", 15, priority=2),
        Column("state", "State", 8),
        Column("network", "Network", 18, priority=3, min_width=18),
    ),
    cells=lambda v: (text(v.project), _public(v), text(v.private_address), v.state, v.network),
    key=lambda v: v.network,
    detail=lambda v: lines(
        [
            ("project", v.project),
            ("network", v.network),
            ("public", _public(v)),
            ("private", v.private_address),
            ("state", v.state),
        ]
        # Made before the VPN moved: Enter lists their users, c issues each again.
        + ([("out of date", f"{v.out_of_date} client configuration(s)")] if v.out_of_date else [])
    ),
    fetch=lambda api, scope: api.list_vpns(),
    drill=lambda v: Drill("vpnusers", {"project": v.project}, str(v.project))
    if v.project
    else None,
    owns=lambda api, v: [
        ("users", ", ".join(f"{u.user} ({u.state})" for u in api.list_vpn_users(v.project))
         or "none"),
    ] if v.project else [],
    copy=lambda v: v.project or v.network,
    empty="No VPNs: a VPN comes with each VLAN network (n in :networks)",
    actions=(
        RowAction("vpn.run", "r", "Run VPN", footer=1, host_change=False, refuse=_no_project,
                  call=_run),
        RowAction(
            "vpn.stop", "X", "Stop VPN", footer=2, host_change=False, refuse=_no_project,
            confirm=lambda v, values: Confirm(
                f"Stop the VPN of project {v.project}? Its users lose access until it runs "
                "again.",
                f"{v.project} ({_where(v)})",
                "Stop",
            ),
            call=_stop,
        ),
        RowAction("vpn.client_config", "c", "Client config", host_change=False,
                  refuse=_no_project, form=lambda s, v: _form(v, user_form), call=_config),
        RowAction(
            "vpn.revoke", "R", "Revoke user", host_change=False, refuse=_no_project,
            form=lambda s, v: Form(
                f"Revoke a VPN user of {v.project}",
                (Field("user", "User", partial(validate.name, "user")),),
                "Next",
            ),
            confirm=lambda v, values: Confirm(
                f"Revoke this user's certificate in project {v.project}? Its VPN refuses "
                "the user from then on.",
                f"{values.text('user')} of {v.project}",
                "Revoke",
            ),
            call=_revoke,
        ),
    ),
)
