"""The users of one project's VPN (reached by Enter on a VPN): client configs, revocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.views import VpnUserView
from tui.views.base import (
    Column,
    Confirm,
    Outcome,
    RowAction,
    Scope,
    Values,
    ViewAction,
    ViewSpec,
    lines,
)
from tui.views.vpns import client_config, revoke, user_form

if TYPE_CHECKING:
    from core.service.api import NetconAPI


def _issue(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    return client_config(api, str(scope["project"]), values.text("user"))


def _config(api: NetconAPI, u: VpnUserView, values: Values) -> Outcome:
    return client_config(api, u.project, u.user)


def _revoke(api: NetconAPI, u: VpnUserView, values: Values) -> Outcome:
    return revoke(api, u.project, u.user)


VPN_USERS: ViewSpec[VpnUserView] = ViewSpec(
    name="vpnusers",
    title="VPN users",
    aliases=("vpnusers",),
    noun=("VPN user", "VPN users"),
    listed=False,
    columns=(
        Column("user", "User", 20),
        Column("state", "State", 8),
        Column("serial", "Certificate serial", 40, priority=1),
    ),
    cells=lambda u: (u.user, u.state, u.serial),
    key=lambda u: (u.user, u.serial),
    detail=lambda u: lines(
        [("user", u.user), ("project", u.project), ("state", u.state), ("serial", u.serial)]
        + ([("made for", f"{u.made_for} on {u.host}")] if u.made_for else [])
    ),
    fetch=lambda api, scope: api.list_vpn_users(str(scope["project"])),
    empty="No users yet: press n to issue a user's client configuration",
    actions=(
        ViewAction("vpnuser.issue", "n", "New user", footer=1, host_change=False,
                   form=lambda s: user_form(str(s.scope["project"])), call=_issue),
        RowAction(
            "vpnuser.config", "c", "Client config", footer=2, host_change=False,
            # An out-of-date configuration is issued again for where the VPN is now.
            refuse=lambda u: None if u.state != "revoked" else f"{u.user}'s certificate "
            f"{u.serial} is revoked: issue a new one with n",
            call=_config,
        ),
        RowAction(
            "vpnuser.revoke", "R", "Revoke", footer=3, host_change=False, bulk=True,
            past="revoked", name=lambda u: u.user,
            refuse=lambda u: None if u.state == "active" else f"{u.user} is already revoked",
            confirm=lambda u, v: Confirm(
                f"Revoke this user's certificate in project {u.project}? Its VPN refuses the "
                "user from then on.",
                f"{u.user} of {u.project}",
                "Revoke",
            ),
            call=_revoke,
        ),
    ),
)
