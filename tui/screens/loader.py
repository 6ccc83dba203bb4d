"""Reading the main screen's rows: a view's load, the windows of a paged view as the
admin scrolls to them, the names the dialogs' pickers offer, and the refresh timer.

Reads run in workers and come back as typed messages, which the screen hands to the
loader in turn with every other message. Each load carries the view's generation
number: an answer for a view the admin has already left is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from tui import heap
from tui.calls import Failure, ask_service
from tui.screens import columns
from tui.screens.state import ViewState, matcher
from tui.typeahead import KeysMayFlow, keys_ahead
from tui.views.base import Known, ViewSpec
from tui.widgets.detail import DetailText
from tui.widgets.virtual_table import ListSource, PagedSource, Row

if TYPE_CHECKING:
    from textual.timer import Timer

    from core.service.api import NetconAPI
    from tui.screens.frame import MainFrame

PAGE_SIZE = 200


@dataclass(frozen=True)
class Keep:
    """Where the cursor goes in the rows being read: on the row with ``key`` if it is
    still there, else at ``index``."""

    key: Hashable | None
    index: int


class LoaderAnswer(Message):
    """What a worker of the loader read, handed back to the loader on the screen's turn."""

    def deliver(self, loader: ViewLoader) -> None:
        raise NotImplementedError


class RowsRead(LoaderAnswer):
    """A view's rows, read whole."""

    def __init__(
        self, generation: int, state: ViewState, rows: list[Row], from_top: bool
    ) -> None:
        super().__init__()
        self.generation, self.state, self.rows = generation, state, rows
        self.from_top = from_top

    def deliver(self, loader: ViewLoader) -> None:
        loader.rows_read(self)


class PagesRead(LoaderAnswer):
    """A paged view's size and its first pages (the one the cursor is on among them)."""

    def __init__(
        self, generation: int, state: ViewState, total: int, pages: dict[int, list[Row]],
        from_top: bool,
    ) -> None:
        super().__init__()
        self.generation, self.state, self.from_top = generation, state, from_top
        self.total, self.pages = total, pages

    def deliver(self, loader: ViewLoader) -> None:
        loader.pages_read(self)


class LoadFailed(LoaderAnswer):
    def __init__(self, generation: int, failure: Failure) -> None:
        super().__init__()
        self.generation, self.failure = generation, failure

    def deliver(self, loader: ViewLoader) -> None:
        loader.load_failed(self)


class WindowRead(LoaderAnswer):
    """More rows of a paged view, scrolled to."""

    def __init__(self, generation: int, state: ViewState, offset: int, rows: list[Row]) -> None:
        super().__init__()
        self.generation, self.state, self.offset, self.rows = generation, state, offset, rows

    def deliver(self, loader: ViewLoader) -> None:
        loader.window_read(self)


class WindowFailed(LoaderAnswer):
    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure

    def deliver(self, loader: ViewLoader) -> None:
        loader.screen.notify(self.failure.message, severity="error")


class KnownRead(LoaderAnswer):
    """Projects, hosts and pools for the dialogs' pickers."""

    def __init__(self, known: Known) -> None:
        super().__init__()
        self.known = known

    def deliver(self, loader: ViewLoader) -> None:
        loader.screen.known = self.known


class ViewLoader:
    """Loads for one main screen: at most one load of a view at a time, the keys that
    wait for its rows, and the timer that refreshes it."""

    def __init__(self, screen: MainFrame) -> None:
        self.screen = screen
        self.generation = 0
        # Rows are being read. Not the screen's own `loading` (Textual's), which would
        # cover the screen with a loading indicator on every refresh and take the focus
        # off the table while it reads, so that keys typed meanwhile would reach no widget.
        self.reading = False
        # From a view's opening until its first rows are up, typed keys wait for them.
        self.opening = False
        self.last_refresh = "never"
        self._timer: Timer | None = None
        self._loading_generation = -1
        self._reload_again = False
        self._started = False
        # The generation whose rows the table shows, and what waits for them: Enter or a
        # row's key pressed while a filter's rows are still being read acts on those rows
        # once they are up, never on the rows they replace.
        self._shown_generation = -1
        self._after_rows: list[Callable[[], None]] = []
        # A read asked for while typed keys wait behind the key that asked for it: it
        # starts once they have been handled (an Esc that leaves the view, the next
        # letters of a filter make it pointless), with the generation it was asked for
        # and whether the cursor goes to the top.
        self._read_waits: tuple[int, bool] | None = None
        # Names for pickers asked for while a load runs: read once its rows are up.
        self._known_after_load = False

    def new_view(self) -> None:
        """The screen shows another view from scratch: what waited for the old one's
        rows is dropped."""
        self.generation += 1
        self.opening = True
        self._after_rows.clear()  # keys pressed for the view being left

    def open_view(self) -> None:
        """Show the screen's view from scratch (a switch, a drill, a back): no rows
        until its own are read, its keys bound."""
        screen = self.screen
        self.new_view()
        state, table = screen.state, screen.table
        table.empty_text = "loading…"
        table.sort_column = state.sort_column
        table.sort_descending = state.sort_descending
        table.marked = state.marks
        columns.apply_wide(screen)
        screen.layout_for(screen.size.width)
        table.set_source(state.spec.columns, ListSource([]))
        screen.query_one("#detail", DetailText).clear()
        screen.keys.bind()
        screen.show_crumbs()
        self.reload()

    def show_source(
        self, source: ListSource | PagedSource, keep_key: Hashable | None, keep_index: int
    ) -> None:
        """Put ``source``'s rows in the table, the cursor on ``keep_key``'s row if it is
        there, else at ``keep_index``."""
        screen = self.screen
        table = screen.table
        scroll_y = table.scroll_y
        state = screen.state
        if state.typed:
            table.empty_text = "nothing matches the filter (Esc clears it)"
        elif state.scope:
            table.empty_text = f"no {state.spec.noun[1]} here"
        else:
            table.empty_text = state.spec.empty
        table.marked = state.marks
        table.set_source(state.spec.columns, source, keep_key, keep_index)
        screen.keys.show()
        # Keep the rows where the eye left them when the cursor is still on screen.
        if scroll_y <= table.cursor < scroll_y + table.size.height - 1:
            table.scroll_to(y=scroll_y, animate=False, immediate=True)
        screen.show_crumbs()

    def new_rows(self) -> None:
        """The same view asks for other rows (a paged view's filter or sort)."""
        self.generation += 1

    @property
    def rows_awaited(self) -> bool:
        """A key waits for the rows being read (Enter on a filter's rows): the keys
        typed after it wait too, so that they act after it."""
        return bool(self._after_rows)

    def when_rows_are_current(self, then: Callable[[], None]) -> bool:
        """True when the table shows the rows of the view as it is now; else ``then``
        runs once they arrive."""
        if self._shown_generation == self.generation:
            return True
        self._after_rows.append(then)
        return False

    # -- loading -------------------------------------------------------------------------

    def reload(self, from_top: bool = False) -> None:
        """Fetch the current view again (timer, ctrl+r, after an action); ``from_top``
        puts the cursor on the first row (a new filter's first match).

        At most one load of a view runs at a time: asking again meanwhile queues one
        more load for when it finishes, so a slow database never piles up queries. A
        load asked for while typed keys wait starts once they have been handled, so
        that keys which leave the view at once (or filter it further) cost no read.
        """
        queue = keys_ahead(self.screen.app)
        if queue is not None and queue.waiting:
            waits = self._read_waits
            if waits is None:
                queue.when_keys_stop(self._start_waiting_read)
            elif waits[0] == self.generation:
                from_top = from_top or waits[1]
            self._read_waits = (self.generation, from_top)
            return
        self._start_read(from_top)

    def _start_waiting_read(self) -> None:
        waits, self._read_waits = self._read_waits, None
        if waits is not None and waits[0] == self.generation:
            self._start_read(waits[1])

    def _start_read(self, from_top: bool) -> None:
        screen = self.screen
        if self.reading and self._loading_generation == self.generation:
            self._reload_again = True
            return
        self._loading_generation = self.generation
        self.reading = True
        screen.show_header()
        state = screen.state
        # Where the cursor goes is decided as the rows arrive (see _cursor_to_keep); the
        # page read with the first is the one it is on now.
        keep_index = 0 if from_top else screen.table.cursor
        generation = self.generation
        spec = state.spec
        first = screen.context.take_first_rows(spec.name)
        if first is not None and spec.fetch_page is None and not state.scope:
            # Read before the service was open (`netcon`'s first screen).
            rows = [self.row(spec, item) for item in first]
            self.rows_read(RowsRead(generation, state, rows, from_top))
        elif spec.fetch_page is not None:
            descending = state.sort_column == 0 and state.sort_descending
            fetch_page = spec.fetch_page

            def read_pages(api: NetconAPI) -> PagesRead:
                first = fetch_page(api, state.scope, state.search, 0, PAGE_SIZE)
                total = first.total
                pages = {0: [self.row(spec, item) for item in first.rows]}
                position = total - 1 - keep_index if descending else keep_index
                wanted = {max(0, min(position, total - 1)) // PAGE_SIZE}
                if descending:
                    wanted.add(max(0, total - 1) // PAGE_SIZE)
                for number in sorted(wanted - {0}):
                    page = fetch_page(api, state.scope, state.search, number * PAGE_SIZE,
                                      PAGE_SIZE)
                    pages[number] = [self.row(spec, item) for item in page.rows]
                return PagesRead(generation, state, total, pages, from_top)

            ask_service(
                screen, screen.service, read_pages, lambda read: read,
                lambda failure: LoadFailed(generation, failure), group="load",
            )
        else:
            fetch = spec.fetch
            assert fetch is not None
            ask_service(
                screen, screen.service,
                lambda api: [self.row(spec, item) for item in fetch(api, state.scope)],
                lambda rows: RowsRead(generation, state, rows, from_top),
                lambda failure: LoadFailed(generation, failure), group="load",
            )

    def row(self, spec: ViewSpec[Any], item: object) -> Row:
        cells = spec.cells(item)
        if spec.pending_column is not None:
            count = self.screen.pending.count(spec.host(item) or "")
            cells = (
                *cells[: spec.pending_column],
                cells[spec.pending_column] if count is None else str(count),
                *cells[spec.pending_column + 1 :],
            )
        return Row(spec.key(item), cells, item)

    def rows_read(self, read: RowsRead) -> None:
        if self._stale(read.generation, read.state):
            return
        state = read.state
        source = ListSource(read.rows)
        source.apply(matcher(state.search), state.sort_column, state.sort_descending)
        self._loaded(source, self._cursor_to_keep(read.from_top))

    def pages_read(self, read: PagesRead) -> None:
        if self._stale(read.generation, read.state):
            return
        state = read.state
        descending = state.sort_column == 0 and state.sort_descending
        paged = PagedSource(read.total, PAGE_SIZE, self._request_window, descending=descending)
        for number, rows in read.pages.items():
            paged.put(number * PAGE_SIZE, rows)
        self._loaded(paged, self._cursor_to_keep(read.from_top))

    def _cursor_to_keep(self, from_top: bool) -> Keep:
        """Where the cursor goes in rows read again: decided as they arrive, since the
        keys pressed while they were read have moved it since."""
        screen = self.screen
        state, table = screen.state, screen.table
        # A newest-first view whose cursor is on its first row follows new rows there.
        following = state.spec.newest_first and table.cursor == 0 and not state.typed
        if from_top or following:
            return Keep(None, 0)
        current = table.current_row
        return Keep(current.key if current else state.cursor_key, table.cursor)

    def _stale(self, generation: int, state: ViewState) -> bool:
        if generation != self.generation or state is not self.screen.state:
            self._load_finished()
            return True
        return False

    def _loaded(self, source: ListSource | PagedSource, keep: Keep) -> None:
        screen = self.screen
        present = {
            row.key for row in getattr(source, "all_rows", [])
        } if isinstance(source, ListSource) else None
        if present is not None:
            screen.state.marks &= present  # a marked row that is gone is no longer marked
        self.show_source(source, keep.key, keep.index)
        self._shown_generation = self.generation
        screen.focus_table_if_lost()
        self.last_refresh = screen.context.clock().strftime("%H:%M:%S")
        self._load_finished()
        waiting, self._after_rows = self._after_rows, []
        for then in waiting:
            then()
        self._opened(held=bool(waiting))
        if not self._started:
            # The first rows may be set while the screen mounts (`netcon`'s lean start),
            # and the table's Highlighted message would then reach the detail pane a
            # frame later: the first screen shows its cursor row's detail with its rows.
            screen.show_detail()
            # The first rows are up: only once they are drawn read names for pickers and
            # what the host still owes, so that neither delays the first screen.
            self._started = True
            screen.call_after_refresh(self.refresh_known)
            screen.call_after_refresh(screen.tracker.read)
            if screen.service.ready:
                # Else once the service is open (tui.app), with what it loaded.
                screen.call_after_refresh(heap.settle)

    def _opened(self, held: bool = False) -> None:
        """The view's rows are up (or could not be read): the keys that waited for
        them may come."""
        if self.opening or held:
            self.opening = False
            self.screen.app.post_message(KeysMayFlow())

    def _load_finished(self) -> None:
        self.reading = False
        self.screen.show_header()
        if self._reload_again:
            self._reload_again = False
            self.reload()
        else:
            self.arm_timer()
            if self._known_after_load:
                self._known_after_load = False
                self.refresh_known()

    def refresh_known_after_load(self) -> None:
        """Names for pickers, read once the load running now has shown its rows: the
        rows an action changed come first."""
        if self.reading or self._read_waits is not None:
            self._known_after_load = True
        else:
            self.refresh_known()

    def load_failed(self, failed: LoadFailed) -> None:
        screen = self.screen
        if failed.generation == self.generation:
            screen.table.empty_text = "could not load"
            screen.table.refresh()
            held = bool(self._after_rows)
            self._after_rows.clear()
            self._opened(held)
        self._load_finished()
        screen.notify(failed.failure.message, title="Refresh failed", severity="error")

    def _request_window(self, offset: int) -> None:
        # Called while drawing: start the fetch after the frame, never inside it.
        self.screen.call_later(self._fetch_window, self.generation, self.screen.state, offset)

    def _fetch_window(self, generation: int, state: ViewState, offset: int) -> None:
        spec = state.spec
        fetch_page = spec.fetch_page
        assert fetch_page is not None
        ask_service(
            self.screen, self.screen.service,
            lambda api: [
                self.row(spec, item)
                for item in fetch_page(api, state.scope, state.search, offset, PAGE_SIZE).rows
            ],
            lambda rows: WindowRead(generation, state, offset, rows),
            WindowFailed,
            group="window",
        )

    def window_read(self, read: WindowRead) -> None:
        source = self.screen.table.source
        if read.generation == self.generation and read.state is self.screen.state and (
            isinstance(source, PagedSource)
        ):
            source.put(read.offset, read.rows)
            self.screen.table.rows_arrived()

    # -- names for the dialogs' pickers ----------------------------------------------

    def refresh_known(self) -> None:
        """Projects, hosts and pools for pickers: read at start and after actions, not on
        every refresh (counting a big cloud's projects is not free)."""

        def read(api: NetconAPI) -> Known:
            # Loaded here, off the event loop, before the first dialog needs it.
            import tui.widgets.dialogs  # noqa: F401

            projects = tuple(sorted(p.name for p in api.list_projects()))
            hosts = tuple(sorted(h.name for h in api.list_hosts()))
            pools = tuple(sorted({f.pool for f in api.list_floating_ips()}))
            return Known(projects, pools, hosts)

        ask_service(self.screen, self.screen.service, read, KnownRead,
                    lambda failure: KnownRead(self.screen.known), group="known")

    # -- live refresh --------------------------------------------------------------------

    def arm_timer(self) -> None:
        """Schedule the next refresh once this one has finished, so a slow database
        never piles up overlapping refreshes."""
        if self._timer is not None:
            self._timer.stop()
        interval = self.screen.context.refresh_interval
        if interval > 0:
            self._timer = self.screen.set_timer(interval, self._tick)

    def _tick(self) -> None:
        screen = self.screen
        # Skip while paused or while a dialog is open; the data would move under it.
        if screen.paused or screen.app.screen is not screen or self.reading:
            self.arm_timer()
            return
        self.reload()
        screen.tracker.read()
