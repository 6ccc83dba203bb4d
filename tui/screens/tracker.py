"""What the hosts still owe, as the main screen shows it: read in a worker (the answer
comes back as :class:`PendingRead`), marked on the rows it touches, and told honestly
after an action: pending on the hosts that owe it, applied on the hosts that have it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from tui.calls import ask_service
from tui.pending import UNKNOWN, Pending
from tui.widgets.virtual_table import Row

if TYPE_CHECKING:
    from tui.screens.main import MainScreen
    from tui.views.base import BaseAction


class PendingRead(Message):
    def __init__(self, pending: Pending) -> None:
        super().__init__()
        self.pending = pending


class PendingTracker:
    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen
        self.pending: Pending = UNKNOWN
        self._reading = False
        # Actions done whose toast waits for the next reading of what the hosts owe.
        self._told_after: list[tuple[str, set[str], bool]] = []

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
        for message, hosts, warn in self._told_after:
            self._tell(message, hosts, warn)
        self._told_after.clear()
        if screen.state.spec.pending_column is not None and before != read.pending:
            screen.loader.reload()

    def row_pending(self, row: Row) -> bool:
        spec = self.screen.state.spec
        if not self.pending.known or spec.whole_plan:
            return False
        host = spec.host(row.item) or self.screen.this_host()
        return self.pending.marks(host, spec.subjects(row.item))

    def changed(self, action: BaseAction, message: str, hosts: set[str], warn: bool) -> None:
        """An action succeeded: show it, and say honestly where the host stands."""
        screen = self.screen
        hosts = hosts or {screen.this_host()}
        screen.loader.reload()
        screen.loader.refresh_known()
        if not action.host_change:
            screen.notify(message, severity="warning" if warn else "information", timeout=5)
            return
        if screen.context.pending_source is None:
            self._tell(message, hosts, warn)
            return
        self._told_after.append((message, hosts, warn))
        self._reading = False
        self.read()

    def _tell(self, message: str, hosts: set[str], warn: bool) -> None:
        applied = [h for h in sorted(hosts) if self.pending.count(h) == 0]
        waiting = [h for h in sorted(hosts) if h not in applied]
        text = message
        if waiting:
            text += f" — saved; pending on {', '.join(waiting)}"
        if applied:
            text += f" — applied on {', '.join(applied)}"
        self.screen.notify(text, severity="warning" if warn else "information", timeout=6)
