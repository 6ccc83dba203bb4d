"""The console: a Textual app over one :class:`NetconAPI`.

``netcon`` with no subcommand calls :func:`run_console`. Tests and the screenshot script
build :class:`NetconApp` directly with a fixed clock so that what it draws is repeatable.
Only what the first screen needs is imported here; dialogs load when first opened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui.context import ConsoleContext
from tui.pending import PendingSource, read_pending
from tui.screens.main import MainScreen
from tui.settings import ConsoleMemory, ConsoleSettings, load_console_settings

if TYPE_CHECKING:
    from textual.command import Provider

    from core.service.api import NetconAPI


def _palette() -> type[Provider]:
    # Loaded when the palette first opens, not before the first screen.
    from tui.commands import NetconCommands

    return NetconCommands


class NetconApp(App[None]):
    TITLE = "netcon"
    COMMANDS = App.COMMANDS | {_palette}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False, id="console.quit_now"),
    ]

    def __init__(
        self,
        api: NetconAPI,
        read_only: bool = False,
        *,
        clock: Callable[[], datetime] | None = None,
        refresh_interval: float | None = None,
        start: str = "networks",
        theme: str | None = None,
        pending_source: PendingSource | None = read_pending,
        settings: ConsoleSettings | None = None,
        memory: ConsoleMemory | None = None,
    ) -> None:
        super().__init__()
        settings = settings if settings is not None else ConsoleSettings()
        style = settings.context_for(api.db.safe_url)
        self.service = api
        # A database this process cannot write turns the console read-only by itself.
        self.read_only = (
            read_only or bool(style and style.read_only) or not api.db.writable()
        )
        self.memory = memory
        self.context = ConsoleContext(
            api=api,
            read_only=self.read_only,
            clock=clock or datetime.now,
            settings=settings,
            memory=memory,
            pending_source=pending_source,
            refresh_interval=settings.refresh if refresh_interval is None else refresh_interval,
            style=style,
        )
        self.start_view = start
        chosen = theme or (memory.theme() if memory else None) or settings.theme
        if chosen and chosen in self.available_themes:
            self.theme = chosen
        self._keep_theme = memory is not None

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(self.context, self.start_view)

    def watch_theme(self, theme: str) -> None:
        if getattr(self, "_keep_theme", False) and self.memory is not None:
            self.memory.keep_theme(theme)

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen


def run_console(
    service: NetconAPI,
    read_only: bool = False,
    clock: Callable[[], datetime] | None = None,
    *,
    settings: ConsoleSettings | None = None,
) -> None:
    """Open the console on ``service`` until the admin quits (q, ctrl+q or :q).

    The console's own settings come from netcon.toml's [console], [keys] and
    [contexts] tables unless given; a mistake in them is refused in one line.
    """
    settings = settings if settings is not None else load_console_settings()
    NetconApp(service, read_only, clock=clock, settings=settings, memory=ConsoleMemory()).run()
