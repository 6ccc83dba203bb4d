"""Keys typed in one burst act in the order they were typed: editing keys among the
letters typed after them in every dialog's fields, keys typed while a view loads on the
view they were typed for, and dialogs that open on a field, never on their button.

Every burst is handed to the console's driver at once (:func:`press_at_once`): Pilot's
``press`` waits for the console between keys and would hide what these tests check.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.widgets import Button, Input, Select

from core.service import NetconService
from tests.tui.conftest import settle
from tests.tui.test_flows import field, messages, press_at_once
from tui.app import NetconApp
from tui.widgets.dialogs import ConfirmDialog, FormDialog, PickDialog

MakeApp = Callable[..., NetconApp]


def focused_input(app: NetconApp) -> Input:
    focused = app.screen.focused
    assert isinstance(focused, Input), focused
    return focused


# -- 1. editing keys in their place --------------------------------------------------


async def test_backspace_among_letters_typed_after_it(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        press_at_once(pilot, *"10.0.0.30", "backspace", *"1/24")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert field(app, "fixed_range").value == "10.0.0.31/24"


async def test_ctrl_u_after_a_refusal_then_enter_saves_what_was_typed(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        before = {n.cidr for n in demo_service.list_networks()}
        await pilot.press("n")
        await settle(pilot)
        press_at_once(pilot, *"10.0.0.300/24", "enter")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        assert str(form.query_one("#error-fixed_range").render())  # refused, and why
        press_at_once(pilot, "ctrl+u", *"10.0.0.0/24")
        await settle(pilot)
        assert field(app, "fixed_range").value == "10.0.0.0/24"
        # The same burst with Enter at its end saves the range typed, never the default.
        press_at_once(pilot, "ctrl+u", *"10.77.0.0/24", "enter")
        await settle(pilot)
        assert app.screen is app.main
        after = {n.cidr for n in demo_service.list_networks()}
        assert after - before == {"10.77.0.0/24"}


# Each editing key, in a burst with letters before and after it.
EDITS = [
    ((*"abc", "home", "x", "end", "y", "left", "z"), "xabczy"),
    ((*"abc", "left", "left", "delete", "q"), "aqc"),
    ((*"ab cd", "ctrl+w", *"ef"), "ab ef"),
    ((*"abc", "ctrl+u", *"de"), "de"),
    ((*"abc", "backspace", "backspace", "d"), "ad"),
    ((*"ab", "home", "right", "x"), "axb"),
]


@pytest.mark.parametrize(("keys", "value"), EDITS)
async def test_editing_keys_in_a_form(
    make_app: MakeApp, keys: tuple[str, ...], value: str
) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        press_at_once(pilot, *keys)
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert focused_input(app).value == value


@pytest.mark.parametrize(("keys", "value"), EDITS)
async def test_editing_keys_in_a_picker(
    make_app: MakeApp, keys: tuple[str, ...], value: str
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")  # associate 203.0.113.1: pick an instance
        await settle(pilot)
        press_at_once(pilot, *keys)
        await settle(pilot)
        assert isinstance(app.screen, PickDialog)
        assert focused_input(app).value == value


async def test_picker_filter_then_enter_picks_what_was_typed(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # 203.0.113.1 is web1's: move it to db1, a typo mended in the same burst.
        await pilot.press("a")
        await settle(pilot)
        press_at_once(pilot, *"dx", "backspace", "b", "enter")
        await settle(pilot)
        assert app.screen is app.main
        assert demo_service.get_floating_ip("203.0.113.1").instance == "db1"


# -- 2. keys typed while a view loads act on that view --------------------------------


async def test_a_key_typed_after_a_view_switch_acts_on_that_view(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "colon", *"fip", "enter", "n", "colon", *"projects", "enter")
        await settle(pilot)
        # `n` on floating IPs is Allocate; what follows is typed into it.
        assert app.main.state.spec.name == "floating"
        dialog = app.screen
        assert isinstance(dialog, FormDialog) and dialog.form.title == "Allocate a floating IP"


async def test_a_destructive_key_waits_for_its_view(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        press_at_once(pilot, "colon", *"fip", "enter", "D", "colon", *"projects", "enter")
        await settle(pilot)
        # D on floating IPs is Release: refused for 203.0.113.1, which is associated;
        # never Delete project on the projects view opened after it.
        assert messages(app) == [
            "203.0.113.1 is associated with web1: disassociate it first (x)"
        ]
        assert app.screen is app.main and app.main.state.spec.name == "projects"
        assert "alpha" in {p.name for p in demo_service.list_projects()}
        # On an address it may release, D asks about that address, on its own view.
        press_at_once(pilot, "colon", *"fip", "enter", "j", "j", "D", "colon", *"projects")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and dialog.target == "203.0.113.3"
        assert app.main.state.spec.name == "floating"


async def test_sort_keys_sort_the_view_they_were_typed_on(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "colon", *"fip", "enter", "S", "s", "colon", *"audit", "enter")
        await settle(pilot)
        main = app.main
        assert main.state.spec.name == "audit"
        assert main.state.sort_column is None
        assert main.previous is not None and main.previous.spec.name == "floating"
        # S: the first column, descending; s then: the next column, ascending.
        assert (main.previous.sort_column, main.previous.sort_descending) == (1, False)


async def test_keys_after_a_drill_act_on_the_rows_drilled_to(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # Enter opens 10.0.0.0/24's fixed IPs (paged), G goes to its last, Esc back;
        # then the floating IPs, where j moves to the second row.
        press_at_once(pilot, "enter", "G", "escape", "colon", *"fip", "enter", "j")
        await settle(pilot)
        main = app.main
        assert main.state.spec.name == "floating" and main.table.cursor == 1


# -- 3. dialogs open on a field --------------------------------------------------------


async def test_allocate_opens_on_its_first_field_not_its_button(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = len(demo_service.list_floating_ips(project="alpha"))
        # Both fields are chosen already (the cursor row's project, its pool): the
        # focus is on the first, and Enter opens its list, it does not allocate.
        await pilot.press("n")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, FormDialog) and dialog.form.title.startswith("Allocate")
        assert not isinstance(dialog.focused, Button)
        project = dialog.query_one("#field-project", Select)
        assert dialog.focused is project
        press_at_once(pilot, "enter")
        await settle(pilot)
        assert project.expanded
        assert len(demo_service.list_floating_ips(project="alpha")) == before


@pytest.mark.parametrize(("view", "key", "title", "first"), [
    ("networks", "n", "New network", "fixed_range"),
    ("projects", "n", "New project", "name"),
    ("floating", "c", "New floating range", "ip_range"),
])
async def test_forms_open_on_the_first_field_to_fill(
    make_app: MakeApp, view: str, key: str, title: str, first: str
) -> None:
    app = make_app(start=view)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, key)
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, FormDialog)
        assert dialog.focused is field(app, first)
