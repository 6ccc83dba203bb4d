"""The console's main flows, driven by keys through Pilot against a real demo database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import Button, Input, Select

from core.service import NetconService
from tests.tui.conftest import demo_plan, fixed_pending, settle
from tui.app import NetconApp
from tui.commands import NetconCommands
from tui.pending import Pending, with_agents
from tui.screens.help import HelpScreen
from tui.widgets.dialogs import ConfirmDialog, FormDialog, PickDialog, TextDialog

MakeApp = Callable[..., NetconApp]


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*[_character_to_key(c) for c in text])


def messages(app: NetconApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def field(app: NetconApp, name: str) -> Any:
    return app.screen.query_one(f"#field-{name}")


def cells(app: NetconApp, column: int = 0) -> list[str]:
    source = app.main.table.source
    return [source.row(i).cells[column] for i in range(source.total)]  # type: ignore[union-attr]


def current(app: NetconApp) -> Any:
    row = app.main.table.current_row
    assert row is not None
    return row.item


async def test_create_network_from_dialog(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        await type_text(pilot, "192.168.50.0/24")
        # Manager and segmentation are pickers, not free text.
        manager = field(app, "manager")
        assert isinstance(manager, Select)
        manager.value = "flatdhcp"
        field(app, "label").focus()
        await type_text(pilot, "lab")
        await pilot.press("tab")
        await type_text(pilot, "brlab")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        network = demo_service.get_network("192.168.50.0/24")
        assert (network.manager, network.label, network.bridge) == ("flatdhcp", "lab", "brlab")
        assert "192.168.50.0/24" in cells(app)
        # No host serves it yet, so none owes it anything: saved, and nothing pending.
        assert network.host is None
        assert messages(app) == ["Created 192.168.50.0/24 — saved"]


async def test_refused_form_keeps_everything_typed(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        before = len(demo_service.list_networks())
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        await type_text(pilot, "10.0.0.0/24")  # alpha's network: the service refuses
        field(app, "label").focus()
        await type_text(pilot, "clash")
        field(app, "dns").focus()
        await type_text(pilot, "192.0.2.53")
        await pilot.press("enter")
        await settle(pilot)
        # The form stays, every field as typed, the refusal under the field it names.
        assert app.screen is form
        assert field(app, "fixed_range").value == "10.0.0.0/24"
        assert field(app, "label").value == "clash"
        assert field(app, "dns").value == "192.0.2.53"
        error = str(form.query_one("#error-fixed_range").render())
        assert "overlap" in error, error
        assert form.focused is field(app, "fixed_range")
        assert messages(app) == []
        # Fix the field and submit again: now it goes through.
        field(app, "fixed_range").value = "10.99.0.0/24"
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        assert len(demo_service.list_networks()) == before + 1
        assert demo_service.get_network("10.99.0.0/24").label == "clash"


async def test_refusal_without_a_field_is_shown_in_the_form(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="secgroups")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")  # a rule on the first group
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        await type_text(pilot, "22")
        await pilot.press("tab")
        await type_text(pilot, "22")
        field(app, "cidr").focus()
        await type_text(pilot, "10.0.0.0/8")
        field(app, "source_group").focus()
        await type_text(pilot, "default")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is form
        assert "not both" in str(form.query_one("#error-cidr").render())
        assert field(app, "source_group").value == "default"


async def test_invalid_field_blocks_submit(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = len(demo_service.list_networks())
        await pilot.press("n")
        await settle(pilot)
        await type_text(pilot, "10.0.0.1/16")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        error = str(app.screen.query_one("#error-fixed_range").render())
        assert "host bits set" in error
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        assert len(demo_service.list_networks()) == before


async def test_launch_here_focuses_the_first_empty_field(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert current(app).name == "alpha"
        await pilot.press("L")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        assert field(app, "project").value == "alpha"
        assert form.focused is field(app, "name")  # not the project, filled already
        await type_text(pilot, "worker7")
        await pilot.press("enter")
        await settle(pilot)
        launched = {i.name: i for i in demo_service.list_instances()}["worker7"]
        assert launched.project == "alpha"
        assert launched.addresses[0].address.startswith("10.0.0.")


async def test_allocate_associate_disassociate(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        field(app, "project").value = "alpha"
        # The form opens on its first field, never on its button: go to the button.
        app.screen.query_one("#submit", Button).focus()
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        allocated = [f for f in demo_service.list_floating_ips() if f.project == "alpha"]
        assert len(allocated) == 4
        new = next(f for f in allocated if f.address == "203.0.113.5")
        assert messages(app)[-1] == "203.0.113.5 allocated to alpha"

        app.main.table.move_cursor(app.main.table.source.index_of(new.id))
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, PickDialog)
        assert [c.value for c in app.screen.choices] == ["db1", "web1", "web2"]
        await type_text(pilot, "db")
        await pilot.press("enter")
        await settle(pilot)
        associated = demo_service.get_floating_ip("203.0.113.5")
        assert (associated.instance, associated.fixed_address) == ("db1", "10.0.0.5")
        assert current(app).instance == "db1"  # the cursor stayed on the row
        assert messages(app)[-1] == ("203.0.113.5 → db1 (10.0.0.5) — saved; pending on nethost1")

        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target == "203.0.113.5"
        await pilot.press("y")
        await settle(pilot)
        released = demo_service.get_floating_ip("203.0.113.5")
        assert released.instance is None and released.project == "alpha"
        assert messages(app)[-1] == (
            "203.0.113.5 disassociated from db1 — saved; pending on nethost1"
        )


async def test_associate_on_an_associated_address_moves_it(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        assert current(app).address == "203.0.113.1" and current(app).instance == "web1"
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, PickDialog)
        # Every other instance of its project is offered; where it is now is not.
        assert [c.value for c in app.screen.choices] == ["db1", "web2"]
        await type_text(pilot, "db")
        await pilot.press("enter")
        await settle(pilot)
        moved = demo_service.get_floating_ip("203.0.113.1")
        assert (moved.instance, moved.fixed_address) == ("db1", "10.0.0.5")
        assert messages(app)[-1] == (
            "203.0.113.1 → db1 (10.0.0.5), moved from web1 — saved; pending on nethost1"
        )
        # A move the service refuses (web2 has one already) says why and changes nothing.
        await pilot.press("a")
        await settle(pilot)
        await type_text(pilot, "web2")
        await pilot.press("enter")
        await settle(pilot)
        assert "already has floating IP 203.0.113.2" in messages(app)[-1]
        assert demo_service.get_floating_ip("203.0.113.1").instance == "db1"


async def test_refused_before_asking(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("G")  # 203.0.113.14: in the pool, allocated to no project
        await settle(pilot)
        assert current(app).project is None
        await pilot.press("D")
        await settle(pilot)
        assert app.screen is app.main  # no confirmation for what would be refused
        assert messages(app) == ["203.0.113.14 is not allocated: there is nothing to release"]
        await pilot.press("x")
        await settle(pilot)
        assert app.screen is app.main
        assert messages(app)[-1] == "203.0.113.14 is not associated"


async def test_confirmation_keys(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("G", "up", "up")  # the unused VLAN network 10.0.3.0/24
        await settle(pilot)
        assert current(app).cidr == "10.0.3.0/24"

        def present() -> bool:
            return "10.0.3.0/24" in [n.cidr for n in demo_service.list_networks()]

        await pilot.press("D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and app.screen.target == "10.0.3.0/24"
        # Enter on the focused button is Cancel: deleting takes a deliberate move.
        await pilot.press("enter")
        await settle(pilot)
        assert present()
        for cancel in ("n", "escape"):
            await pilot.press("D")
            await settle(pilot)
            await pilot.press(cancel)
            await settle(pilot)
            assert app.screen is app.main and present()
        await pilot.press("D")
        await settle(pilot)
        await pilot.press("right", "left", "right", "enter")
        await settle(pilot)
        assert not present()
        # The cursor stays where it was, on the next row up.
        assert current(app).cidr in ("10.0.2.0/24", "10.10.0.0/24")


async def test_refusal_of_a_confirmed_action_is_shown_in_the_dialog(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="secgroups")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # Delete alpha/web while an instance is launched into it behind the console's back.
        await pilot.press("slash", *"web", "enter")
        await settle(pilot)
        demo_service.launch_instance("alpha", "late", ["web"])
        group = current(app)
        assert group.name == "web" and group.instances == 2  # as listed, before the launch
        app.main.runner.run_row_action(
            app.main.state.spec,
            app.main._action("secgroup.delete"),  # type: ignore[arg-type]
            [group._replace(instances=0)],
        )
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is dialog
        assert "used by 3 instance(s)" in str(dialog.query_one("#confirm-refusal").render())
        await pilot.press("enter")  # Close
        await settle(pilot)
        assert app.screen is app.main


async def test_read_only_hides_actions(make_app: MakeApp) -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        for action in main.state.spec.actions:
            assert main.check_action("run", (action.id,)) is False
        keys = str(main.query_one("#keys").render())
        assert "New network" not in keys and "Delete" not in keys
        await pilot.press("n", "D")
        await settle(pilot)
        assert app.screen is main
        titles = [e.text for e in NetconCommands(main).entries()]
        assert "View: Networks" in titles
        assert not [t for t in titles if t.startswith("Networks:")]
        # Plan still reads; apply is gone.
        await pilot.press("colon", *"hosts", "enter")
        await settle(pilot)
        assert main.check_action("run", ("host.plan",)) is True
        assert main.check_action("run", ("host.apply",)) is False


async def test_read_only_when_database_cannot_be_written(
    make_app: MakeApp, demo_service: NetconService, monkeypatch: Any
) -> None:
    monkeypatch.setattr(demo_service.db, "writable", lambda: False)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.read_only
        assert app.main.check_action("run", ("network.create",)) is False


async def test_palette_offers_actions_of_the_view_with_their_keys(make_app: MakeApp) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        entries = {e.text: e.help for e in NetconCommands(app.main).entries()}
        assert entries["Floating IPs: Associate"].startswith("key a")
        for wanted in (
            "Floating IPs: Allocate",
            "Floating IPs: Release",
            "Floating IPs: New range",
            "Floating IPs: Delete range",
            "Theme: ansi-dark",
            "View: Audit log",
        ):
            assert wanted in entries


async def test_command_line_completes_remembers_and_goes_back(make_app: MakeApp) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        main = app.main
        await pilot.press("colon", *"ins", "enter")  # a unique prefix opens its view
        await settle(pilot)
        assert main.state.spec.name == "instances"
        await pilot.press("colon", *"fl", "tab")  # Tab completes
        await settle(pilot)
        assert main.query_one("#command", Input).value == "floating"
        await pilot.press("enter")
        await settle(pilot)
        assert main.state.spec.name == "floating"
        await pilot.press("colon", "up")  # history, newest first
        assert main.query_one("#command", Input).value == "floating"
        await pilot.press("up")
        assert main.query_one("#command", Input).value == "instances"
        await pilot.press("escape")
        await settle(pilot)
        assert not main.query_one("#command").display
        assert main.focused is main.table
        await pilot.press("minus")  # back to the view before
        await settle(pilot)
        assert main.state.spec.name == "instances"
        await pilot.press("minus")
        await settle(pilot)
        assert main.state.spec.name == "floating"
        # A word that names nothing keeps the prompt open with the word in it.
        await pilot.press("colon", *"nope", "enter")
        await settle(pilot)
        assert main.query_one("#command", Input).value == "nope"
        assert any("no view named" in m for m in messages(app))
        # Focus leaving the prompt closes it: it never stays stranded on screen.
        main.table.focus()
        await settle(pilot)
        assert not main.query_one("#command").has_class("-open")


async def test_tab_in_the_prompt_never_strands_it(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        await pilot.press("colon", "tab", "tab")  # nothing typed: cycles the names
        await settle(pilot)
        prompt = main.query_one("#command", Input)
        assert main.focused is prompt and prompt.value in ("projects", "networks")
        await pilot.press("slash")  # a character in a prompt, not the filter key
        assert main.focused is prompt


async def test_q_quits(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_q_in_a_prompt_is_a_letter(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "q")
        await settle(pilot)
        assert app.is_running
        assert app.main.state.typed == "q"


async def test_filter_every_column_negation_and_regex(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        await pilot.press("enter")  # 10.0.0.0/24's fixed IPs, paged from the database
        await settle(pilot)
        await pilot.press("slash", *"allocated")  # the State column
        await settle(pilot)
        assert main.table.source.total == 3
        assert "(3 match)" in str(main.query_one("#crumbs").render())
        await pilot.press("enter")  # leaves the prompt, keeps the filter
        await settle(pilot)
        assert main.state.typed == "allocated"
        await pilot.press("slash", "ctrl+u", *"!free")
        await settle(pilot)
        assert main.table.source.total == 7  # 4 reserved and 3 allocated
        await pilot.press("ctrl+u", *[_character_to_key(c) for c in r"^10\.0\.0\.1\d$"])
        await settle(pilot)
        assert main.table.source.total == 10
        await pilot.press("escape")  # closes the filter and drops it
        await settle(pilot)
        assert main.table.source.total == 256
        assert main.state.spec.name == "fixed"

        await pilot.press("colon", *"fip", "enter", "slash", *"!alpha")
        await settle(pilot)
        assert "(11 of 14)" in str(main.query_one("#crumbs").render())


async def test_filter_with_markup_characters(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *[_character_to_key(c) for c in "[b]x[/"])
        await settle(pilot)
        assert app.is_running
        assert app.main.table.source.total == 0
        assert "[b]x[/" in str(app.main.query_one("#crumbs").render())


KEY_CHARACTERS = {"slash": "/", "colon": ":", "enter": "\r", "escape": "\x1b"}


def press_at_once(pilot: Pilot[Any], *keys: str) -> None:
    """Hand ``keys`` to the console in one burst, as a terminal delivers fast typing (or
    tmux send-keys): Pilot's ``press`` waits for the console to go idle after each key,
    which hides what happens when keys queue up behind one another."""
    app = pilot.app
    assert app._driver is not None
    for key in keys:
        event = events.Key(key, KEY_CHARACTERS.get(key, key if len(key) == 1 else None))
        event.set_sender(app)
        app._driver.send_message(event)


# Floating IPs are filtered in memory; fixed IPs in the database, whose answer comes
# after the second Enter has arrived: that Enter opens the filter's first match, never
# the row the answer replaces.
@pytest.mark.parametrize(("view", "typed", "instance"), [
    ("floating", "web", "web1"),
    ("fixed", "web2", "web2"),
])
async def test_filter_enter_enter_typed_at_once_opens_the_first_match(
    make_app: MakeApp, view: str, typed: str, instance: str
) -> None:
    app = make_app(start=view)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        # The first Enter keeps the filter and hands the table the focus on the first
        # match; the second opens that row.
        press_at_once(pilot, "slash", *typed, "enter", "enter")
        await settle(pilot)
        assert main.state.spec.name == "instances"
        assert main.state.scope == {"instance": instance}
        assert cells(app) == [instance]
        await pilot.press("escape")
        await settle(pilot)
        assert main.state.spec.name == view and main.state.typed == typed
        assert not main.query_one("#filter", Input).has_class("-open")


async def test_keys_typed_after_a_prompt_closes_reach_the_table(make_app: MakeApp) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        press_at_once(pilot, "slash", *"alpha", "enter", "j")
        await settle(pilot)
        assert main.state.typed == "alpha" and main.table.cursor == 1
        assert main.focused is main.table
        # A view's name and Enter, then Enter on its first row.
        press_at_once(pilot, "colon", *"fip", "enter", "enter")
        await settle(pilot)
        assert main.state.spec.name == "instances"
        assert main.state.scope == {"instance": "web1"}
        # Esc drops the filter before the Enter behind it opens the first row.
        await pilot.press("escape")
        await settle(pilot)
        press_at_once(pilot, "slash", *"app1", "escape", "enter")
        await settle(pilot)
        assert main.state.spec.name == "instances"
        assert main.state.scope == {"instance": "web1"}
        # A prompt's editing keys keep their place among the letters typed after them.
        await pilot.press("escape")
        await settle(pilot)
        press_at_once(pilot, "slash", *"xy", "ctrl+u", *"apx", "backspace", "p", "1", "enter")
        await settle(pilot)
        assert main.state.typed == "app1" and cells(app) == ["203.0.113.4"]
        press_at_once(pilot, "colon", *"inst", "tab", "enter")
        await settle(pilot)
        assert main.state.spec.name == "instances" and main.state.scope == {}


async def test_marks_and_bulk_disassociate(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        # 203.0.113.1 (web1), .2 (web2), .3 (alpha, not associated): three marks.
        await pilot.press("space", "space", "space")
        await settle(pilot)
        assert len(app.main.state.marks) == 3
        assert "3 marked" in str(app.main.query_one("#crumbs").render())
        await pilot.press("x")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        # The count, the names, and the one that cannot be done, before anything is done.
        assert "2 floating IPs" in dialog.question
        assert "1 marked left out" in dialog.question
        assert dialog.targets == ["203.0.113.1", "203.0.113.2"]
        await pilot.press("y")
        await settle(pilot)
        assert [f.instance for f in demo_service.list_floating_ips()[:3]] == [None] * 3
        assert messages(app)[-1] == ("2 floating IPs disassociated — saved; pending on nethost1")
        await pilot.press("escape")  # clears the marks
        assert not app.main.state.marks


async def test_bulk_terminate_and_rule_removal(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("space", "space")  # app1, app2
        await pilot.press("D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.question == "Terminate: 2 instances?"
        await pilot.press("y")
        await settle(pilot)
        assert {"app1", "app2"}.isdisjoint(i.name for i in demo_service.list_instances())

        await pilot.press("colon", *"sg", "enter", "slash", *"web", "enter", "enter")
        await settle(pilot)
        assert app.main.state.spec.name == "rules"
        assert app.main.table.source.total == 2
        await pilot.press("space", "space", "D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and "2 rules" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        web = next(g for g in demo_service.list_security_groups("alpha") if g.name == "web")
        assert web.rules == ()
        # The host filtering web's members owes the change: the core says so.
        assert messages(app)[-1] == "2 rules removed — saved; pending on nethost1"


async def test_enter_opens_something_on_every_view(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="vpn")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        await pilot.press("enter")  # a VPN: its users
        await settle(pilot)
        assert main.state.spec.name == "vpnusers" and main.state.scope == {"project": "alpha"}
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("colon", *"sg", "enter", "enter")  # a group: its rules
        await settle(pilot)
        assert main.state.spec.name == "rules"
        await pilot.press("escape", "M")  # and M: its members (alpha/default)
        await settle(pilot)
        assert main.state.spec.name == "members"
        assert cells(app) == ["db1", "web1", "web2"]
        await pilot.press("colon", *"hosts", "enter", "enter")  # a host: its networks
        await settle(pilot)
        assert main.state.spec.name == "networks"
        assert main.table.source.total == 4
        await pilot.press("colon", *"audit", "enter", "enter")  # an event: all of it
        await settle(pilot)
        assert isinstance(app.screen, TextDialog)
        assert "before" in str(app.screen.query_one("#text-body Static").render())
        await pilot.press("escape", "colon", *"instances", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, TextDialog)  # an instance: in full
        await pilot.press("escape", "colon", *"projects", "enter", "enter")
        await settle(pilot)  # a project: its instances; N its networks
        assert main.state.spec.name == "instances" and main.state.scope == {"project": "alpha"}
        await pilot.press("escape", "N")
        await settle(pilot)
        assert main.state.spec.name == "networks" and main.state.scope == {"project": "alpha"}
        await pilot.press("enter")  # a network: its fixed IPs
        await settle(pilot)
        assert main.state.spec.name == "fixed"
        await pilot.press("slash", *"web1", "enter", "enter")  # a fixed IP: its instance
        await settle(pilot)
        assert main.state.spec.name == "instances" and cells(app) == ["web1"]


async def test_empty_database_says_what_to_do(tmp_path: Any, monkeypatch: Any) -> None:
    from core.config import load_settings
    from tests.tui.conftest import FIXED_TIME

    monkeypatch.chdir(tmp_path)
    service = NetconService("sqlite:///empty.db", load_settings(paths=[], host="nethost1"))
    app = NetconApp(service, clock=lambda: FIXED_TIME, refresh_interval=0, pending_source=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = str(app.main.table.render_line(1).text)
        assert "press n to create one" in text and "netcon demo" in text
    service.db.dispose()


async def test_sort_cycles_and_header_click(make_app: MakeApp) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("s", "s")
        names = cells(app)
        assert names == sorted(names, reverse=True)
        await pilot.click("#table", offset=(18, 0))  # the Project header
        await settle(pilot)
        projects = cells(app, 1)
        assert projects == sorted(projects)
        assert app.main.state.sort_column == 1


async def test_refresh_keeps_cursor_on_the_same_row(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "down")
        assert current(app).name == "mail1"
        demo_service.launch_instance("alpha", "aaa-first")  # sorts above mail1
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.main.table.source.total == 8
        assert current(app).name == "mail1"


async def test_pause_stops_timer_refresh(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app(start="instances", refresh_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        demo_service.launch_instance("alpha", "late")
        await pilot.pause(0.3)
        await settle(pilot)
        assert app.main.table.source.total == 7
        await pilot.press("p")
        await pilot.pause(0.3)
        await settle(pilot)
        assert app.main.table.source.total == 8


async def test_help_lists_the_keys_as_bound(make_app: MakeApp) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        sections = dict(app.main.help_sections())
        view = {e.binding_id: e.key for e in sections["Floating IPs"]}
        assert view["floating.associate"] == "a" and view["floating.release"] == "D"
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.main


async def test_view_and_theme_from_palette(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await type_text(pilot, "View: Audit")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.state.spec.name == "audit"
        await pilot.press("ctrl+p")
        await settle(pilot)
        await type_text(pilot, "Theme: ansi-dark")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "ansi-dark"


async def test_stop_vpn_that_is_not_running(make_app: MakeApp) -> None:
    app = make_app(start="vpn")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("X")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target.startswith("alpha")
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is app.main
        assert any("alpha" in m for m in messages(app)), messages(app)


async def test_reserve_and_unreserve_fixed_ip(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("slash", *[_character_to_key(c) for c in "10.0.0.6"], "enter")
        await settle(pilot)
        assert current(app).address == "10.0.0.6" and current(app).state == "free"

        def state() -> str:
            page = demo_service.list_fixed_ips(network="10.0.0.0/24", search="10.0.0.6")
            return next(f.state for f in page.rows if f.address == "10.0.0.6")

        await pilot.press("r")
        await settle(pilot)
        assert state() == "reserved" and current(app).state == "reserved"
        await pilot.press("r")  # said at once, nothing asked
        await settle(pilot)
        assert messages(app)[-1] == "10.0.0.6 is already reserved"
        await pilot.press("u")
        await settle(pilot)
        assert state() == "free"


async def test_add_rule_then_remove_it(make_app: MakeApp, demo_service: NetconService) -> None:
    def rules() -> list[tuple[str, int, int]]:
        group = next(g for g in demo_service.list_security_groups("alpha") if g.name == "web")
        return [(r.protocol, r.from_port, r.to_port) for r in group.rules]

    app = make_app(start="secgroups")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"web", "enter", "a")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert app.screen.focused is field(app, "from_port")  # protocol is filled (tcp)
        await pilot.press("8", "0", "8", "0", "tab", "8", "0", "8", "0", "enter")
        await settle(pilot)
        assert ("tcp", 8080, 8080) in rules()
        await pilot.press("enter")  # the group's rules
        await settle(pilot)
        await pilot.press("slash", *"8080", "enter", "D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and "8080" in app.screen.target
        await pilot.press("y")
        await settle(pilot)
        assert ("tcp", 8080, 8080) not in rules() and len(rules()) == 2


async def test_create_and_delete_floating_range(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert app.screen.focused is field(app, "ip_range")  # the host is picked already
        await type_text(pilot, "198.51.100.8-198.51.100.11")
        await pilot.press("tab")
        await type_text(pilot, "lab")
        await pilot.press("enter")
        await settle(pilot)
        pool = [f.address for f in demo_service.list_floating_ips() if f.pool == "lab"]
        assert pool == [f"198.51.100.{n}" for n in range(8, 12)]

        await pilot.press("X")
        await settle(pilot)
        field(app, "ip_range").value = "198.51.100.8-198.51.100.11"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target == "198.51.100.8-198.51.100.11"
        assert "4 addresses" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        assert not [f for f in demo_service.list_floating_ips() if f.pool == "lab"]


async def test_create_project_then_group_then_delete_group(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await type_text(pilot, "delta")
        await pilot.press("enter")
        await settle(pilot)
        assert "delta" in [p.name for p in demo_service.list_projects()]
        assert "delta" in app.main.known.projects  # offered by the pickers from now on

        await pilot.press("colon", *"sg", "enter", "n")
        await settle(pilot)
        project = field(app, "project")
        assert isinstance(project, Select) and "delta" in [o[1] for o in project._options]
        project.value = "delta"
        field(app, "name").focus()
        await type_text(pilot, "dns")
        await pilot.press("enter")
        await settle(pilot)
        assert "dns" in {g.name for g in demo_service.list_security_groups("delta")}

        await pilot.press("slash", *"dns", "enter", "D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and app.screen.target == "dns"
        await pilot.press("y")
        await settle(pilot)
        assert "dns" not in {g.name for g in demo_service.list_security_groups("delta")}


async def test_pending_rows_header_and_detail(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    # One count of pending everywhere: the changes `netcon host list` counts.
    owed = {h.name: h.pending for h in demo_service.list_hosts()}["nethost1"]
    assert owed == 10
    app = make_app(pending_source=fixed_pending(demo_plan()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        header = str(main.query_one("#header").render())
        assert f"nethost1 ~{owed} pending" in header
        pending = [row.cells[0] for row in main.table.source.rows if main._row_pending(row)]
        assert pending == ["10.0.0.0/24"]  # br100's bridge and gateway are owed
        detail = str(main.query_one("#detail").render())
        assert "pending on nethost1" in detail and "create bridge br100" in detail
        await pilot.press("colon", *"fip", "enter")
        await settle(pilot)
        pending = [row.cells[0] for row in main.table.source.rows if main._row_pending(row)]
        assert pending == ["203.0.113.1"]
        await pilot.press("colon", *"hosts", "enter")
        await settle(pilot)
        assert cells(app, 5) == [str(owed)]
        detail = str(main.query_one("#detail").render())
        assert f"{owed} change(s) not applied yet" in detail
        # ...and the plan says how many operations applying them takes here.
        assert f"pending on nethost1  {owed} change(s); plan: 3 operation(s)" in detail
        assert "P shows it, A applies it" in detail


async def test_toast_says_pending_on_the_host_that_owes_the_change(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    """The core says which hosts owe a change; the toast names them, and the hosts view
    counts the change the moment it is made."""
    before = {h.name: h.pending for h in demo_service.list_hosts()}["nethost1"]
    app = make_app(start="floating", pending_source=fixed_pending(demo_plan()))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        press_at_once(pilot, "x", "y")
        await settle(pilot)
        assert messages(app)[-1] == (
            "203.0.113.1 disassociated from web1 — saved; pending on nethost1"
        )
        assert f"nethost1 ~{before + 1} pending" in str(app.main.query_one("#header").render())


async def test_toast_says_saved_when_no_host_owes_the_change(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    # A project names no host: nothing is owed anywhere, and nothing pending is said.
    app = make_app(start="projects", pending_source=fixed_pending(demo_plan()))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("n", *"omega", "enter")
        await settle(pilot)
        assert messages(app)[-1] == "Project omega created (vlan)"


async def test_write_waiting_on_a_lock_shows_it_is_working(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    import sqlite3

    app = make_app(start="projects")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        await type_text(pilot, "blocked")
        # Another writer holds the database: the call waits for its lock.
        other = sqlite3.connect("demo.db", timeout=30, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("enter")
            await pilot.pause(0.5)
            assert app.screen is form  # not closed: it is working
            working = str(form.query_one("Working Static").render())
            assert working.startswith("New project…") and working.endswith(" s")
            assert form.busy
        finally:
            other.execute("ROLLBACK")
            other.close()
        await settle(pilot)
        assert app.screen is app.main
        assert "blocked" in [p.name for p in demo_service.list_projects()]


async def test_instance_shows_what_may_reach_it_and_checks_a_connection(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"web1", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, TextDialog)
        body = str(app.screen.query_one("#text-body Static").render())
        assert "may reach it" in body
        assert "tcp 80 from 0.0.0.0/0  [web" in body  # the web group's rule, named
        assert "anything else: deny" in body
        await pilot.press("escape", "e")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        await type_text(pilot, "198.51.100.7")
        await pilot.press("tab", "tab")
        await type_text(pilot, "22")
        await pilot.press("enter")
        await settle(pilot)
        denied = demo_service.explain_ingress("web1", "198.51.100.7", "tcp", port=22)
        assert not denied.allowed
        assert any("denied by" in m and "tcp 22 from 198.51.100.7" in m for m in messages(app))


async def test_other_hosts_owe_what_their_agents_have_not_applied(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    """nethost1's own plan is read from its kernel; nethost2's pending changes come from
    what its agent recorded, and go once it records them applied."""
    empty = demo_plan()
    empty = empty.__class__(empty.host, (), ())
    demo_service.heartbeat("nethost2")
    moved = demo_service.modify_network("10.0.0.0/24", host="nethost2")
    change = demo_service.last_change
    assert change is not None and change.change is not None
    source = lambda api: with_agents(api, Pending(plans={empty.host: empty}))  # noqa: E731
    app = make_app(start="hosts", pending_source=source)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        assert dict(zip(cells(app, 0), cells(app, 5), strict=True))["nethost2"] == "1"
        await pilot.press("slash", *"nethost2", "enter")
        await settle(pilot)
        detail = str(main.query_one("#detail").render())
        assert f"pending on nethost2  1 change(s): {change.change}" in detail
        await pilot.press("colon", *"networks", "enter")
        await settle(pilot)
        marked = [row.cells[0] for row in main.table.source.rows if main._row_pending(row)]
        assert marked == [moved.cidr]

        demo_service.record_applied("nethost2", change.change)
        await pilot.press("colon", *"hosts", "enter", "ctrl+r")
        await settle(pilot)
        assert dict(zip(cells(app, 0), cells(app, 5), strict=True))["nethost2"] == "0"


async def test_evacuate_a_down_host_names_both_hosts(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    demo_service.heartbeat("nethost2")  # alive: the evacuation goes there
    app = make_app(start="hosts")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"nethost1", "enter", "E")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        await pilot.click("#submit")  # no host chosen: the least loaded live ones
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target == "nethost1 → the least loaded live hosts"
        await pilot.press("y")
        await settle(pilot)
    assert {n.host for n in demo_service.list_networks() if n.host} == {"nethost2"}
    assert messages(app)[-1].endswith(
        "of nethost1 moved to nethost2 — saved; pending on nethost1, nethost2"
    )


async def test_security_group_and_rule_rows_are_marked_while_a_host_owes_them(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    """A rule added to alpha/web: this host's plan allows it into the group's filter,
    and the group's row and that rule's row show `~` until the host has it."""
    from core.linux.operations import Plan
    from core.linux.secgroups.operations import AddRuleElement
    from core.service.host import _plan_view

    demo_service.add_security_group_rule("alpha", "web", "tcp", 8443, 8443, cidr="0.0.0.0/0")
    group = next(g for g in demo_service.list_security_groups("alpha") if g.name == "web")
    owed = AddRuleElement(group.id, "alpha/web", "ports", "0.0.0.0/0 . 6 . 8443",
                          "tcp 8443 from 0.0.0.0/0")
    plan = _plan_view("nethost1", Plan(operations=(owed,)))
    app = make_app(start="projects", pending_source=fixed_pending(plan))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        press_at_once(pilot, "colon", *"secgroups", "enter")
        await settle(pilot)
        marked = [(row.cells[0], row.cells[1]) for row in main.table.source.rows
                  if main._row_pending(row)]
        assert marked == [("alpha", "web")]
        press_at_once(pilot, "slash", *"web", "enter", "enter")
        await settle(pilot)
        rows = {row.cells[3]: main._row_pending(row) for row in main.table.source.rows}
        assert rows == {"80": False, "443": False, "8443": True}
        detail = str(main.query_one("#detail").render())
        assert "pending on nethost1" not in detail  # the cursor is on a rule the host has
