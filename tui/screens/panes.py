"""What the main screen says around its table: the header (database, context, what
this host owes, the last refresh), the breadcrumbs (where the admin is, the filter,
marks, sort, a call at work) and the detail pane of the row under the cursor."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from tui.screens import status
from tui.typeahead import KeysMayFlow
from tui.widgets.detail import DetailText

if TYPE_CHECKING:
    from textual.timer import Timer

    from tui.screens.frame import MainFrame


def _redraw_line(bar: Static, content: Content) -> None:
    """A one-line bar (the header, the crumbs) says something new: redrawn in place,
    never a layout of the whole screen (each refresh says loading…, then the time), and
    not at all when it says the same."""
    shown = bar.content
    if isinstance(shown, Content) and shown.is_same(content):
        return
    bar.update(content, layout=False)


class Panes:
    def __init__(self, screen: MainFrame) -> None:
        self.screen = screen
        # A call without a dialog at work: what it is and when it started.
        self.working: tuple[str, float] | None = None
        self._working_timer: Timer | None = None

    def header(self) -> None:
        screen = self.screen
        header = screen.query_one("#header", Static)
        if screen.context.style is not None:
            header.styles.background = screen.context.style.color
        _redraw_line(
            header,
            status.header(
                screen.context, screen.pending, paused=screen.paused,
                loading=screen.loader.reading, last_refresh=screen.loader.last_refresh,
                width=max(0, screen.app.size.width - 2),
            ),
        )

    def crumbs(self) -> None:
        screen = self.screen
        _redraw_line(
            screen.query_one("#crumbs", Static),
            status.crumbs(screen.stack, screen.state, screen.table.source, self.working),
        )

    def working_on(self, what: str | None) -> None:
        """A call without a dialog runs (``what``), or has finished (None): say so in
        the breadcrumbs, with the time it has taken."""
        if self._working_timer is not None:
            self._working_timer.stop()
            self._working_timer = None
        if what is None:
            self.working = None
            # Keys typed behind the action's key waited for its dialog or its answer.
            self.screen.app.post_message(KeysMayFlow())
        else:
            self.working = (what, time.monotonic())
            self._working_timer = self.screen.set_interval(0.1, self.crumbs)
        self.crumbs()

    def detail(self) -> None:
        screen = self.screen
        detail = screen.query_one("#detail", DetailText)
        row = screen.table.current_row
        if row is None:
            detail.clear()
            return
        spec = screen.state.spec
        content = spec.detail(row.item)
        extra = status.pending_detail(
            spec, row.item, screen.pending, screen.this_host(), screen.context.read_only
        )
        detail.show(Content.assemble(content, *extra))
