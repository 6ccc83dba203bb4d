"""What the main screen is given by the app: the service, the mode, the settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from tui.settings import ConsoleMemory, ConsoleSettings, ContextStyle

if TYPE_CHECKING:
    from core.config import Settings
    from core.service.api import NetconAPI
    from tui.calls import ServiceSlot
    from tui.pending import PendingSource


@dataclass
class ConsoleContext:
    service: ServiceSlot
    # The service's settings (this host, its namespace) and its database as the header
    # names it: known before the service is open.
    config: Settings
    database: str
    read_only: bool
    clock: Callable[[], datetime]
    settings: ConsoleSettings = field(default_factory=ConsoleSettings)
    memory: ConsoleMemory | None = None
    # Where pending host changes are read from; None when not read (tests, pictures).
    pending_source: PendingSource | None = None
    refresh_interval: float = 5.0
    style: ContextStyle | None = None
    # Rows of a view read before the service was open, by view name: its first load
    # shows them instead of asking the service.
    first_rows: dict[str, Sequence[object]] = field(default_factory=dict)
    # The host whose netcon serve runs this console in a browser; None in a terminal.
    served_by: str | None = None
    # Opens another database by URL (`:ctx`); None where the console cannot.
    open_database: Callable[[str], NetconAPI] | None = None
    # Read-only as asked on the command line, whatever the database allows.
    asked_read_only: bool = False

    def take_first_rows(self, view: str) -> Sequence[object] | None:
        """The rows read for ``view`` before the service was open, for the console's
        first load only: any later load asks the service, so rows read at start-up are
        never shown as current minutes after."""
        rows = self.first_rows.pop(view, None)
        self.first_rows.clear()
        return rows
