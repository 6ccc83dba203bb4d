"""The console: a Textual app over one :class:`NetconService`.

``netcon`` with no subcommand calls :func:`run_console`. Tests and the screenshot script
build :class:`NetconApp` directly with a fixed clock so that what it draws is repeatable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui.commands import NetconCommands
from tui.screens.main import MainScreen

if TYPE_CHECKING:
    from core.service import NetconService

DEFAULT_REFRESH_SECONDS = 5.0


class NetconApp(App[None]):
    CSS_PATH = ["netcon.tcss", "dialogs.tcss"]
    TITLE = "netcon"
    COMMANDS = App.COMMANDS | {NetconCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        # Kept out of the footer (80 columns are for this view's keys); `?` lists it.
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
    ]

    def __init__(
        self,
        service: NetconService,
        read_only: bool = False,
        *,
        clock: Callable[[], datetime] | None = None,
        refresh_interval: float = DEFAULT_REFRESH_SECONDS,
        start: str = "networks",
        theme: str | None = None,
        host_plans: bool = True,
    ) -> None:
        super().__init__()
        self.service = service
        # A database this process cannot write turns the console read-only by itself.
        self.read_only = read_only or not service.db.writable()
        self.clock: Callable[[], datetime] = clock or datetime.now
        self.refresh_interval = refresh_interval
        self.start_view = start
        self.known_projects: set[str] = set()
        # The hosts view plans this machine on each refresh (reads netlink, nftables).
        self.host_plans = host_plans
        if theme:
            self.theme = theme

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(self.start_view)

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen


def run_console(
    service: NetconService,
    read_only: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Open the console on ``service`` until the admin quits (ctrl+q or :q)."""
    NetconApp(service, read_only, clock=clock).run()
