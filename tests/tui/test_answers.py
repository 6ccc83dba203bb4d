"""An action's service call comes back to the main screen as a typed message (done or
refused, a picker's choices, a screen read), handled there in turn: what the admin sees
is what the callbacks showed, a toast, the pending marks, the refreshed rows, a refusal
under the field it names. Keys go in one burst."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from textual.message import Message

from core.service import NetconService
from tests.tui.conftest import settle
from tests.tui.test_flows import messages, press_at_once
from tui.app import NetconApp
from tui.screens.answers import ActionAnswer
from tui.screens.main import MainScreen
from tui.widgets.dialogs import FormDialog

MakeApp = Callable[..., NetconApp]


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The kinds of answer posted to the main screen, in order."""
    posted: list[str] = []
    original = MainScreen.post_message

    def post(screen: MainScreen, message: Message) -> bool:
        if isinstance(message, ActionAnswer):
            posted.append(type(message).__name__)
        return original(screen, message)

    monkeypatch.setattr(MainScreen, "post_message", post)
    yield posted


def rows(app: NetconApp) -> list[str]:
    source = app.main.table.source
    return [source.row(i).cells[0] for i in range(source.total)]  # type: ignore[union-attr]


async def test_a_form_refused_then_saved_answers_with_messages(
    make_app: MakeApp, demo_service: NetconService, answers: list[str]
) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        press_at_once(pilot, "n", *"alpha", "enter")  # alpha exists: refused
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        assert answers == ["ActionRefused"]
        assert "alpha" in str(form.query_one("#error-name").render())
        assert messages(app) == []
        press_at_once(pilot, "ctrl+u", *"zeta", "enter")
        await settle(pilot)
        assert answers == ["ActionRefused", "ActionDone"]
        assert not isinstance(app.screen, FormDialog)
        assert messages(app) == ["Project zeta created (vlan)"]
        assert "zeta" in rows(app)


async def test_a_picker_and_a_confirmation_answer_with_messages(
    make_app: MakeApp, demo_service: NetconService, answers: list[str]
) -> None:
    """Associate reads its choices in a worker (ChoicesRead); the call answers too."""
    free = next(f for f in demo_service.list_floating_ips() if f.project and not f.instance)
    app = make_app(start="floating")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        press_at_once(pilot, "slash", *free.address, "enter")
        await settle(pilot)
        press_at_once(pilot, "a")
        await settle(pilot)
        assert answers == ["ChoicesRead"]
        press_at_once(pilot, "enter")
        await settle(pilot)
        assert answers[-1] == "ActionDone"
        associated = next(
            f for f in demo_service.list_floating_ips() if f.address == free.address
        )
        assert associated.instance is not None
        assert messages(app)[-1].startswith(f"{free.address}")
