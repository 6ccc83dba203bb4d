"""`:ctx` switches the console to another database named in netcon.toml's [contexts],
as k9s switches clusters: `:ctx` offers them, `:ctx NAME` goes straight there.

A context whose ``database`` is a glob (it marks any database that matches) names no
one database to open, so only those with a plain URL are offered. The new database is
opened in a worker; until it answers the console stays on the old one, and a database
that cannot be opened leaves it there with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.calls import Failure, ServiceSlot, ask_service
from tui.screens.answers import ActionAnswer
from tui.screens.state import ViewState
from tui.settings import ContextStyle
from tui.views.base import Choice, Known

if TYPE_CHECKING:
    from core.service.api import NetconAPI
    from tui.screens.frame import MainFrame

GLOB = set("*?[")


def switchable(contexts: tuple[ContextStyle, ...]) -> list[ContextStyle]:
    return [c for c in contexts if not GLOB & set(c.database)]


def command(screen: MainFrame, name: str) -> None:
    """`:ctx` with or without a name."""
    contexts = switchable(screen.context.settings.contexts)
    if not contexts:
        screen.notify(
            "no context to switch to: name databases under [contexts] in netcon.toml "
            "(database = a URL, label, color)", severity="warning", timeout=6,
        )
        return
    if name:
        chosen = next((c for c in contexts if c.name == name), None)
        if chosen is None:
            names = ", ".join(c.name for c in contexts)
            screen.notify(f"no context named {name!r}; contexts: {names}", severity="warning")
            return
        switch(screen, chosen)
        return
    from tui.widgets.dialogs import PickDialog

    current = screen.context.style.name if screen.context.style else None
    choices = [
        Choice(f"{c.name}  {c.label}  {c.database}" + ("  (current)" if c.name == current
                                                       else ""), c.name)
        for c in contexts
    ]

    def picked(value: object) -> None:
        chosen = next((c for c in contexts if c.name == value), None)
        if chosen is not None:
            switch(screen, chosen)

    screen.app.push_screen(PickDialog("Switch to a context", choices), picked)


def switch(screen: MainFrame, style: ContextStyle) -> None:
    context = screen.context
    opener = context.open_database
    if opener is None:
        screen.notify("this console cannot open another database", severity="warning")
        return

    screen.show_working(f"Opening {style.name}")
    ask_service(screen, screen.service, lambda _api: opener(style.database),
                lambda api: ContextOpened(style, api),
                lambda failure: ContextRefused(style, failure), group="context")  # fmt: skip


class ContextOpened(ActionAnswer):
    """Another context's database, open: the console starts over on it."""

    def __init__(self, style: ContextStyle, api: NetconAPI) -> None:
        super().__init__()
        self.style, self.api = style, api

    def deliver(self, screen: MainFrame) -> None:
        context, style, api = screen.context, self.style, self.api
        screen.show_working(None)
        context.service = ServiceSlot(api)
        context.database = api.db.safe_url
        context.style = style
        context.read_only = context.asked_read_only or style.read_only or not api.db.writable()
        start_over(screen)
        screen.notify(f"Context {style.name}: {context.database}", timeout=4)


class ContextRefused(ActionAnswer):
    def __init__(self, style: ContextStyle, failure: Failure) -> None:
        super().__init__()
        self.style, self.failure = style, failure

    def deliver(self, screen: MainFrame) -> None:
        screen.show_working(None)
        screen.notify(self.failure.message, title=f"Context {self.style.name} not opened",
                      severity="error", timeout=8)


def start_over(screen: MainFrame) -> None:
    """Another database: the same view from scratch, nothing of the old one carried over
    (the views behind, the marks, what its hosts owed)."""
    screen.stack.clear()
    screen.previous = None
    screen.state = ViewState(screen.state.spec)
    screen.known = Known()
    screen.tracker.forget()
    screen.open_view()
    screen.loader.refresh_known()
    screen.tracker.read()
