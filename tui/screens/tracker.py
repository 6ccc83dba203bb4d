"""What the hosts still owe, as the main screen shows it: read in a worker (the answer
comes back as :class:`PendingRead`), marked on the rows it touches, and told honestly
after an action: pending on the hosts that owe it, applied on the hosts that have it,
as the core answered the action (its ``owing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from tui.calls import ask_service
from tui.pending import UNKNOWN, Pending
from tui.screens import status
from tui.views.base import RowAction
from tui.widgets.virtual_table import Row

if TYPE_CHECKING:
    from core.views import OwingView
    from tui.screens.frame import MainFrame
    from tui.views.base import BaseAction


class PendingRead(Message):
    def __init__(self, pending: Pending) -> None:
        super().__init__()
        self.pending = pending


class PendingTracker:
    def __init__(self, screen: MainFrame) -> None:
        self.screen = screen
        self.pending: Pending = UNKNOWN
        self._reading = False

    def read(self) -> None:
        source = self.screen.context.pending_source
        if source is None or self._reading:
            return
        self._reading = True
        ask_service(self.screen, self.screen.service, source, PendingRead,
                    lambda failure: PendingRead(UNKNOWN), group="pending")

    def arrived(self, read: PendingRead) -> None:
        screen = self.screen
        self._reading = False
        before = self.pending
        self.pending = read.pending
        screen.show_header()
        screen.table.refresh()
        screen.show_detail()
        if screen.state.spec.pending_column is not None and before != read.pending:
            screen.loader.reload()

    def row_pending(self, row: Row) -> bool:
        spec = self.screen.state.spec
        if not self.pending.known or spec.whole_plan:
            return False
        if spec.every_host:
            return bool(self.pending.owing(spec.subjects(row.item)))
        host = spec.host(row.item) or self.screen.this_host()
        return self.pending.marks(host, spec.subjects(row.item))

    def forget(self) -> None:
        """Another database: what the old one's hosts owed says nothing of the new."""
        self.pending = UNKNOWN
        self._reading = False

    def changed(
        self, action: BaseAction, message: str, owing: OwingView | None, warn: bool
    ) -> None:
        """An action succeeded: show it, and where the hosts stand, as the core said."""
        screen = self.screen
        state = screen.state
        if isinstance(action, RowAction) and action.bulk and state.marks:
            # The marks were for this action: done, they would only mislead the next.
            state.marks.clear()
            screen.table.marked = state.marks
            screen.show_crumbs()
        screen.loader.reload()
        screen.loader.refresh_known_after_load()
        text = status.told(message, owing, saved=action.host_change)
        screen.notify(text, severity="warning" if warn else "information", timeout=6)
        if owing is not None and (owing.pending_on or owing.applied_on) or action.host_change:
            self._reading = False
            self.read()
