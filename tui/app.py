"""The console: a Textual app over one :class:`NetconAPI`.

``netcon`` with no subcommand calls :func:`run_console`. Tests and the screenshot script
build :class:`NetconApp` directly with a fixed clock so that what it draws is repeatable.
Only what the first screen needs is imported here; dialogs load when first opened.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui import heap
from tui.calls import Opening, ServiceSlot
from tui.context import ConsoleContext
from tui.pending import PendingSource, read_pending
from tui.screens.main import MainScreen
from tui.serve import SERVED_BY
from tui.settings import ConsoleMemory, ConsoleSettings, load_console_settings
from tui.typeahead import KeyHandled, KeysMayFlow, TypeAhead

if TYPE_CHECKING:
    from textual.command import Provider
    from textual.driver import Driver
    from textual.notifications import SeverityLevel

    from core.config import Settings
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
        api: NetconAPI | Opening,
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
        """``api``: the service, or an :class:`Opening` (`netcon` itself: the service is
        opened in a thread once the first rows are drawn)."""
        super().__init__()
        settings = settings if settings is not None else ConsoleSettings()
        if isinstance(api, Opening):
            service = ServiceSlot(opener=api.open)
            config, database, writable = api.settings, api.url, api.writable
            first_rows = dict(api.first_rows)
        else:
            service = ServiceSlot(api)
            config, database, writable = api.settings, api.db.safe_url, api.db.writable()
            first_rows = {}
        style = settings.context_for(database)
        self.service = service
        # Why the service could not be opened, when that ended the console.
        self.open_error: BaseException | None = None
        # A database this process cannot write turns the console read-only by itself.
        self.read_only = read_only or bool(style and style.read_only) or not writable
        self.memory = memory
        self.context = ConsoleContext(
            service=service,
            config=config,
            database=database,
            read_only=self.read_only,
            clock=clock or datetime.now,
            settings=settings,
            memory=memory,
            pending_source=pending_source,
            refresh_interval=settings.refresh if refresh_interval is None else refresh_interval,
            style=style,
            first_rows=first_rows,
            served_by=os.environ.get(SERVED_BY),
            open_database=partial(open_database, config),
            asked_read_only=read_only,
        )
        self.start_view = start
        chosen = theme or (memory.theme() if memory else None) or settings.theme
        if chosen and chosen in self.available_themes:
            self.theme = chosen
        self._keep_theme = memory is not None
        quit_now = settings.keys.get("console.quit_now", "ctrl+q")
        self.typeahead = TypeAhead(
            self, frozenset(key.strip() for key in quit_now.split(","))
        )

    async def on_event(self, event: events.Event) -> None:
        # Typed keys and pastes wait their turn (see tui.typeahead); once handed over,
        # and when they bubble back up, Textual handles them as usual.
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            await self.typeahead.typed(event)
            return
        await super().on_event(event)

    @on(KeyHandled)
    async def _key_handled(self, marker: KeyHandled) -> None:
        await self.typeahead.marker_arrived(marker)

    @on(KeysMayFlow)
    async def _keys_may_flow(self) -> None:
        await self.typeahead.resume()

    def get_driver_class(self) -> type[Driver]:
        # Escape typed ahead of other keys stays Escape (tui.terminal).
        from tui.terminal import console_driver

        return console_driver(super().get_driver_class())

    def on_mount(self) -> None:
        if not self.service.ready:
            # After the first frame: the import it waits for would hold the GIL and
            # delay that frame.
            self.call_after_refresh(self._open_service)

    def on_unmount(self) -> None:
        heap.release()

    def _open_service(self) -> None:
        def work() -> None:
            try:
                self.service.get()
            except BaseException as exc:  # whatever it is, the console cannot go on
                with contextlib.suppress(RuntimeError):
                    self.call_from_thread(self._service_failed, exc)
                return
            # What opening the service loaded is kept while the console runs.
            with contextlib.suppress(RuntimeError):
                self.call_from_thread(heap.settle)

        self.run_worker(work, thread=True, group="open", exit_on_error=False)

    def _service_failed(self, error: BaseException) -> None:
        self.open_error = error
        self.exit(return_code=1)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A toast says its text as given, never as markup: it holds names and the core's
        refusals, whose brackets ("[contexts]", an IPv6 "[::1]:1194") are no tags."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

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


def open_database(settings: Settings, url: str) -> NetconAPI:
    """Another database for `:ctx`: never created by a switch, only opened, and its
    changes applied to this host at once as `netcon --db URL` would (auto_apply)."""
    from core.service import NetconService
    from core.service.hostsync import install_auto_apply

    service = NetconService(url, settings, create=False, application="netcon console")
    install_auto_apply(service)
    return service


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
