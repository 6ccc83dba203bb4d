"""What a walk through the console as a user found, held: each test names the point of
the console's issue it belongs to. Keys go in one burst."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets._toast import Toast

from tests.tui.conftest import settle
from tests.tui.test_flows import press_at_once
from tui.app import NetconApp

MakeApp = Callable[..., NetconApp]


def toasts(app: NetconApp) -> list[str]:
    """The toasts as drawn (not as asked for)."""
    return [str(toast.render()) for toast in app.screen.query(Toast)]


async def test_a_toast_shows_brackets_as_typed(make_app: MakeApp) -> None:
    """6: `:ctx` with no contexts says where to name them, `[contexts]` included: a
    toast's text is never read as markup."""
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        press_at_once(pilot, "colon", *"ctx", "enter")
        await settle(pilot)
        assert any("under [contexts] in netcon.toml" in text for text in toasts(app)), toasts(app)
