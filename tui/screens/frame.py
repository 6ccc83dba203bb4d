"""The main screen as its parts see it: what it shows (the view's state, the stack of
views, the table) and the faces of its parts that the others call.

The parts (:mod:`tui.screens.loader`, :mod:`~tui.screens.tracker`,
:mod:`~tui.screens.screen_keys`, :mod:`~tui.screens.prompts`, :mod:`~tui.screens.panes`
and the helpers that take the screen) are typed against :class:`MainFrame`, never
against :class:`tui.screens.main.MainScreen`, which builds them: so no import, not even
one for types, goes from a part back to the screen. What one part calls of another goes
through a protocol here (:class:`RowsPart`…), for the same reason.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

from textual.screen import Screen
from textual.widgets import Input

from tui.screens.state import ViewState
from tui.views.base import Known, ViewSpec
from tui.widgets.virtual_table import ListSource, PagedSource, VirtualTable

if TYPE_CHECKING:
    from tui.calls import ServiceSlot
    from tui.context import ConsoleContext
    from tui.pending import Pending


class RowsPart(Protocol):
    """What the others call of the view loader (:class:`tui.screens.loader.ViewLoader`)."""

    reading: bool
    last_refresh: str

    def open_view(self) -> None: ...

    def new_rows(self) -> None: ...

    def reload(self, from_top: bool = False) -> None: ...

    def show_source(
        self, source: ListSource | PagedSource, keep_key: Hashable | None, keep_index: int
    ) -> None: ...

    def refresh_known(self) -> None: ...

    def refresh_known_after_load(self) -> None: ...


class PendingPart(Protocol):
    """What the others call of the pending tracker
    (:class:`tui.screens.tracker.PendingTracker`)."""

    pending: Pending

    def read(self) -> None: ...

    def forget(self) -> None: ...


class KeysPart(Protocol):
    """What the others call of the screen's keys (:class:`tui.screens.screen_keys.ScreenKeys`)."""

    def bind(self) -> None: ...

    def show(self) -> None: ...


class PanesPart(Protocol):
    """What the others call of the panes around the table (:class:`tui.screens.panes.Panes`)."""

    def header(self) -> None: ...

    def crumbs(self) -> None: ...

    def detail(self) -> None: ...

    def working_on(self, what: str | None) -> None: ...


class MainFrame(Screen[None]):
    """The main screen's state and table, and the parts it is built of; the screen
    (:class:`tui.screens.main.MainScreen`) composes it and sets the parts."""

    context: ConsoleContext
    state: ViewState
    # The views Enter narrowed from (Esc pops), and the one before the last switch (`-`).
    stack: list[ViewState]
    previous: ViewState | None
    paused: bool
    known: Known
    # The views shown with every column (`w`), and the columns each view hides (`C`).
    wide_views: set[str]
    hidden_columns: dict[str, list[str]]
    loader: RowsPart
    tracker: PendingPart
    keys: KeysPart
    panes: PanesPart

    @property
    def service(self) -> ServiceSlot:
        return self.context.service

    def this_host(self) -> str:
        return self.context.config.host

    @property
    def pending(self) -> Pending:
        return self.tracker.pending

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#table", VirtualTable)

    def focus_table_if_lost(self) -> None:
        if self.app.screen is self and not isinstance(self.focused, Input):
            self.set_focus(self.table)

    def layout_for(self, width: int) -> None:
        # Wide terminals get the detail beside the table; 80 columns get it below. Very
        # wide ones give the table its columns' full width and the detail the rest.
        self.query_one("#body").set_class(width >= 120, "-wide")
        pane = self.query_one("#detail-pane")
        table_width = sum(column.width + 1 for column in self.state.spec.columns) + 4
        pane.styles.width = max(48, width - table_width) if width >= 160 else None

    # -- header, breadcrumbs, detail -----------------------------------------------------

    def show_header(self) -> None:
        self.panes.header()

    def show_crumbs(self) -> None:
        self.panes.crumbs()

    def show_working(self, what: str | None) -> None:
        self.panes.working_on(what)

    def show_detail(self) -> None:
        self.panes.detail()

    # -- views ---------------------------------------------------------------------------

    def open_view(self) -> None:
        """Show the current state's view from scratch (a switch, a drill, a back)."""
        self.loader.open_view()

    def switch_to(self, spec: ViewSpec[Any]) -> None:
        if spec is not self.state.spec or self.stack:
            self.previous = self.state
        self.stack.clear()
        self.state = ViewState(spec)
        self.open_view()
        self.table.focus()

    def action_run(self, action_id: str) -> None:
        """Run this view's action ``action_id`` (its key, the palette)."""
        raise NotImplementedError  # the screen runs actions with its runner
