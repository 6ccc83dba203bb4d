"""The VPN view's user actions through Pilot: issue a client configuration, copy it,
revoke a user; all against the real core and a PKI in the test's own state directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import TextArea

from core.config import load_settings
from core.linux.vpn.server import ServerFiles
from core.service import NetconService
from tests.tui.conftest import DB_NAME, FIXED_TIME, settle
from tui.app import NetconApp
from tui.commands import NetconCommands
from tui.widgets.dialogs import ClientConfigDialog, ConfirmDialog, FormDialog

PUBLIC_ADDRESS = "192.0.2.10"  # TEST-NET-1: written into the .ovpn, never contacted

MakeVpnApp = Callable[..., NetconApp]


@pytest.fixture
def make_vpn_app(demo_service: NetconService, tmp_path: Path) -> Iterator[MakeVpnApp]:
    """The demo cloud with the PKI kept under the test's directory, not the machine's."""
    services: list[NetconService] = []

    def make(read_only: bool = False, vpn_ip: str | None = PUBLIC_ADDRESS) -> NetconApp:
        settings = load_settings(
            paths=[], host="nethost1", state_dir=str(tmp_path / "state"), vpn_ip=vpn_ip
        )
        service = NetconService(db_url=f"sqlite:///{DB_NAME}", settings=settings, actor="admin")
        services.append(service)
        return NetconApp(
            service, read_only, clock=lambda: FIXED_TIME, start="vpn", refresh_interval=0,
            pending_source=None,
        )

    yield make
    for service in services:
        service.db.dispose()


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*[_character_to_key(c) for c in text])


def messages(app: NetconApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def users_of(app: NetconApp, project: str) -> list[str]:
    return ServerFiles(app.service.get().settings.state_dir, project).pki.users()


async def test_issue_and_copy_client_config(make_vpn_app: MakeVpnApp) -> None:
    app = make_vpn_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        assert app.main.current_item().project == "alpha"
        await pilot.press("c")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)

        # The core's rule for user names, shown inline; the form stays open.
        await type_text(pilot, "alice/../x")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is form
        assert "must be 1-63 letters" in str(form.query_one("#error-user").render())
        assert users_of(app, "alpha") == []

        form.query_one("#field-user").value = ""  # type: ignore[attr-defined]
        await type_text(pilot, "alice")
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ClientConfigDialog)
        text = dialog.query_one("#client-config-text", TextArea).text
        assert dialog.query_one(TextArea).read_only
        assert text.startswith("# netcon VPN of project alpha: user alice\n")
        assert f"remote {PUBLIC_ADDRESS} 1000" in text
        assert "<key>" in text and "PRIVATE KEY" in text
        assert users_of(app, "alpha") == ["alice"]
        # Issued once: asking the core again reuses the same certificate and key.
        assert app.service.get().vpn_client_config("alpha", "alice") == text

        await pilot.press("c")
        await settle(pilot)
        assert app.clipboard == text
        assert app.screen is dialog
        assert any("alice copied" in m for m in messages(app)), messages(app)
        # The key never reaches a notification.
        assert not [m for m in messages(app) if "PRIVATE" in m or "BEGIN" in m]

        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.main


async def test_client_config_refusal_stays_in_the_form(make_vpn_app: MakeVpnApp) -> None:
    app = make_vpn_app(vpn_ip=None)  # no public address for clients to reach
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        form = app.screen
        await type_text(pilot, "alice")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is form
        assert str(form.query_one("#form-refusal").render()) == (
            "✗ vpn_public_address: network 10.0.0.0/24 has none for clients to reach; "
            "set vpn_ip"
        )
        assert form.query_one("#field-user").value == "alice"  # type: ignore[attr-defined]
        assert messages(app) == []


async def test_revoke_asks_naming_user_and_project(make_vpn_app: MakeVpnApp) -> None:
    app = make_vpn_app()
    app.service.get().vpn_client_config("alpha", "alice")
    pki = ServerFiles(app.service.get().settings.state_dir, "alpha").pki
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        await type_text(pilot, "alice")
        await pilot.press("enter")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmDialog)
        assert confirm.target == "alice of alpha"
        assert "project alpha" in confirm.question
        # Enter on the focused button is Cancel.
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is app.main
        assert pki.users() == ["alice"] and not pki.revoked_serials()

        await pilot.press("R")
        await settle(pilot)
        await type_text(pilot, "alice")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is app.main
        assert pki.users() == []
        serials = pki.revoked_serials()
        assert len(serials) == 1
        assert messages(app) == [f"Revoked alice in alpha (certificate {serials.pop():x})"]

        # A user without a certificate: the core's refusal, word for word, in the dialog.
        await pilot.press("R")
        await settle(pilot)
        await type_text(pilot, "bob")
        await pilot.press("enter")
        await settle(pilot)
        confirm = app.screen
        await pilot.press("y")
        await settle(pilot)
        assert app.is_running and app.screen is confirm
        assert str(confirm.query_one("#confirm-refusal").render()) == (
            "✗ user: 'bob' has no certificate in project alpha"
        )


async def test_user_actions_in_palette_and_help(make_vpn_app: MakeVpnApp) -> None:
    app = make_vpn_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [e.text for e in NetconCommands(app.main).entries()]
        assert "VPNs: Client config" in titles and "VPNs: Revoke user" in titles
        view = {e.key: e.label for e in dict(app.main.help_sections())["VPNs"]}
        assert view["c"] == "Client config" and view["R"] == "Revoke user"


async def test_vpn_users_view(make_vpn_app: MakeVpnApp) -> None:
    app = make_vpn_app()
    app.service.get().vpn_client_config("alpha", "alice")
    app.service.get().vpn_client_config("alpha", "bob")
    app.service.get().revoke_vpn_user("alpha", "bob")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # alpha's VPN: its users
        await settle(pilot)
        main = app.main
        assert main.state.spec.name == "vpnusers"
        rows = [main.table.source.row(i).cells[:2] for i in range(main.table.source.total)]  # type: ignore[union-attr]
        assert rows == [("alice", "active"), ("bob", "revoked")]
        await pilot.press("c")  # alice's configuration, again
        await settle(pilot)
        assert isinstance(app.screen, ClientConfigDialog) and app.screen.user == "alice"
        await pilot.press("escape", "down", "R")
        await settle(pilot)
        assert app.screen is main  # bob is revoked already: said, not asked
        assert messages(app)[-1] == "bob is already revoked"


async def test_read_only_hides_user_actions(make_vpn_app: MakeVpnApp) -> None:
    app = make_vpn_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        for action in ("vpn.client_config", "vpn.revoke"):
            assert main.check_action("run", (action,)) is False
        await pilot.press("c")
        await pilot.press("R")
        await settle(pilot)
        assert app.screen is main
        titles = [e.text for e in NetconCommands(main).entries()]
        assert not [t for t in titles if t.startswith("VPNs:")]
        keys: list[Any] = [
            (e.key, e.label) for _heading, section in main.help_sections() for e in section
        ]
        assert ("c", "Client config") not in keys and ("R", "Revoke user") not in keys
        assert users_of(app, "alpha") == []
