"""The one screen of the console, a generic engine for every view of ``tui/views/``: a
header, breadcrumbs, the table of the current view and the detail pane of its row,
the ``:`` and ``/`` prompts, and a footer of this view's keys.

Views switch inside this screen (``:networks``); Enter narrows to what a row owns and
pushes the current view on a stack that Esc pops; ``-`` returns to the view before the
last switch. Reading happens in workers; an answer for a view the admin has already
left is dropped (each load carries the view's generation number).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from tui.calls import Failure, ServiceSlot, call_service
from tui.keys import GENERAL, TABLE_KEYS, KeySpec, build_bindings, unknown_ids
from tui.palette import PaletteEntry
from tui.pending import UNKNOWN, Pending, read_pending
from tui.screens import contexts, describe, marks, status
from tui.screens.columns import TABLE_BOUND, choose_columns, hidden_of, sort_keys
from tui.screens.runner import ActionRunner
from tui.screens.state import ViewState, matcher
from tui.views import VIEWS, completions, resolve
from tui.views.base import (
    BaseAction,
    Drill,
    Known,
    RowAction,
    Search,
    Situation,
    ViewAction,
    ViewSpec,
)
from tui.widgets.keybar import KeyBar
from tui.widgets.prompt import CommandPrompt, Prompt
from tui.widgets.virtual_table import ListSource, PagedSource, Row, VirtualTable

if TYPE_CHECKING:
    from core.service.api import NetconAPI
    from core.views import OwingView
    from tui.context import ConsoleContext
    from tui.screens.help import HelpEntry

PAGE_SIZE = 200


class MainScreen(Screen[None]):
    DEFAULT_CSS = """
    MainScreen #header {
        dock: top; height: 1; background: $primary; color: $text;
        text-wrap: nowrap; text-overflow: ellipsis; padding: 0 1;
    }
    MainScreen #crumbs {
        height: 1; background: $panel; color: $foreground;
        text-wrap: nowrap; text-overflow: ellipsis; padding: 0 1;
    }
    MainScreen #body { layout: vertical; height: 1fr; }
    MainScreen #body.-wide { layout: horizontal; }
    MainScreen #detail-pane {
        height: 8; border-top: solid $primary; background: $surface; padding: 0 1;
    }
    MainScreen #body.-wide #detail-pane {
        height: 1fr; width: 48; border-top: none; border-left: solid $primary;
    }
    MainScreen #detail { width: 1fr; }
    MainScreen #body.-all-columns #detail-pane { display: none; }
    MainScreen #filter { border-left: outer $secondary; }
    """

    # Replaced per view (see _bind): the general keys and this view's actions.
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, context: ConsoleContext, start: str = "networks") -> None:
        super().__init__()
        self.context = context
        self.state = ViewState(VIEWS[start])
        self.stack: list[ViewState] = []
        self.previous: ViewState | None = None
        self.generation = 0
        self.paused = False
        self.loading = False
        self.last_refresh = "never"
        self.pending: Pending = UNKNOWN
        self.known = Known()
        self.working: tuple[str, float] | None = None
        self.runner = ActionRunner(self)
        self._timer: Timer | None = None
        self._working_timer: Timer | None = None
        self._loading_generation = -1
        self._reload_again = False
        self._pending_reading = False
        self._started = False
        # The generation whose rows the table shows, and what waits for them: Enter or a
        # row's key pressed while a filter's rows are still being read acts on those rows
        # once they are up, never on the rows they replace.
        self._shown_generation = -1
        self._after_rows: list[Callable[[], None]] = []
        self.key_problems: list[str] = []
        self.sort_specs: list[KeySpec] = []  # this view's shift+letter sorts
        # The views shown with every column (`w`), remembered between runs.
        self.wide_views: set[str] = set(context.memory.wide() if context.memory else ())
        # The columns each view does not show (`C`), by column key.
        self.hidden_columns: dict[str, list[str]] = (
            context.memory.hidden_columns() if context.memory else {}
        )

    # -- what the runner and the palette need ------------------------------------------

    @property
    def service(self) -> ServiceSlot:
        return self.context.service

    def this_host(self) -> str:
        return self.context.config.host

    def situation(self) -> Situation:
        project = str(self.state.scope.get("project", ""))
        item = self.current_item()
        if not project and item is not None:
            owner = getattr(item, "project", None)
            if isinstance(owner, str):
                project = owner
            elif self.state.spec.name == "projects":
                project = str(getattr(item, "name", ""))
        return Situation(self.context.config, dict(self.state.scope), self.known, project)

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="crumbs")
        with Horizontal(id="body"):
            yield VirtualTable(id="table")
            with VerticalScroll(id="detail-pane"):
                yield Static(id="detail")
        yield CommandPrompt(
            completions,
            self.context.memory.history() if self.context.memory else [],
            id="command",
            placeholder="projects networks fixed fip vpn instances sg hosts audit · Tab",
        )
        yield Prompt(
            id="filter", compact=True,
            placeholder="filter every column; !text negates; ^regex$ matches a pattern",
        )
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        # The keys stay with the table; J and K scroll the detail pane instead.
        self.query_one("#detail-pane").can_focus = False
        self.table.pending = self._row_pending
        self._layout_for(self.size.width)
        self._check_keymap()
        self.open_view()

    def _check_keymap(self) -> None:
        ids = [spec.id for spec in GENERAL] + [
            action.id for view in VIEWS.values() for action in view.actions
        ]
        keymap = self.context.settings.keys
        problems = [f"keys.{i} is not a binding id (`?` lists them)" for i in
                    unknown_ids(keymap, ids)]
        for view in VIEWS.values():
            problems += self._view_keys(view)[1]
        self.key_problems = sorted(set(problems))
        if self.key_problems:
            self.notify("\n".join(self.key_problems), title="netcon.toml [keys]",
                        severity="warning", timeout=10)

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self._focus_table_if_lost)

    def _focus_table_if_lost(self) -> None:
        if self.app.screen is self and not isinstance(self.focused, Input):
            self.set_focus(self.table)

    def on_resize(self) -> None:
        self._layout_for(self.size.width)
        self.call_after_refresh(self.show_header)

    def _layout_for(self, width: int) -> None:
        # Wide terminals get the detail beside the table; 80 columns get it below. Very
        # wide ones give the table its columns' full width and the detail the rest.
        self.query_one("#body").set_class(width >= 120, "-wide")
        pane = self.query_one("#detail-pane")
        table_width = sum(column.width + 1 for column in self.state.spec.columns) + 4
        pane.styles.width = max(48, width - table_width) if width >= 160 else None

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#table", VirtualTable)

    # -- keys ----------------------------------------------------------------------------

    def _view_keys(
        self, spec: ViewSpec[Any]
    ) -> tuple[list[Binding], list[str], list[KeySpec]]:
        """The view's bindings, the keys bound twice, and its shift+letter sorts."""
        keymap = self.context.settings.keys
        specs = list(GENERAL) + [
            KeySpec(a.id, a.key, f"run('{a.id}')", a.label, a.footer) for a in spec.actions
        ]
        bindings, clashes = build_bindings(specs, keymap)
        taken = {key for binding in bindings for key in binding.key.split(",")}
        sorts = sort_keys(spec, taken)
        sorting, _ = build_bindings(sorts, keymap)
        return bindings + sorting, clashes, sorts

    def _bind(self) -> None:
        bindings, _clashes, self.sort_specs = self._view_keys(self.state.spec)
        self._bindings = BindingsMap(bindings)
        # A letter this view binds (`g` on instances) is the view's, not the table's.
        self.table.ceded = frozenset(
            key for binding in bindings for key in binding.key.split(",")
        ) & TABLE_BOUND
        self.refresh_bindings()
        self.show_keys()

    def _enabled(self, action: BaseAction) -> bool:
        return not (action.mutating and self.context.read_only)

    def _action(self, action_id: str) -> RowAction[Any] | ViewAction | None:
        for action in self.state.spec.actions:
            if action.id == action_id:
                return action if self._enabled(action) else None
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run":
            # While typing in a prompt a view's key is just a character.
            if isinstance(self.focused, Input):
                return False
            return self._action(str(parameters[0])) is not None
        if action in ("command_line", "filter", "mark", "previous", "sort",
                      "toggle_pause", "sort_by", "describe", "copy", "wide",
                      "mark_range", "columns"):
            # While typing in a prompt these are just characters.
            return not isinstance(self.focused, Input)
        return True

    def _key(self, spec_id: str, default: str) -> str:
        keys = self.context.settings.keys.get(spec_id, default).split(",")[0].strip()
        return self.app.get_key_display(Binding(keys, ""))

    def show_keys(self) -> None:
        """The footer: this view's actions in their order, then `:` `/` `?` `q`."""
        entries: list[tuple[int, str, str]] = []
        empty = self.table.current_row is None
        for action in self.state.spec.actions:
            if empty and isinstance(action, RowAction):
                continue  # nothing to act on yet
            if action.footer is not None and self._enabled(action):
                entries.append((action.footer, self._key(action.id, action.key), action.label))
        for spec in GENERAL:
            if spec.footer is not None:
                entries.append((spec.footer, self._key(spec.id, spec.key), spec.label))
        entries.sort(key=lambda e: e[0])
        self.query_one(KeyBar).show_keys([(key, label) for _, key, label in entries])

    # -- header and breadcrumbs ----------------------------------------------------------

    def show_header(self) -> None:
        header = self.query_one("#header", Static)
        if self.context.style is not None:
            header.styles.background = self.context.style.color
        header.update(
            status.header(
                self.context, self.pending, paused=self.paused, loading=self.loading,
                last_refresh=self.last_refresh, width=max(0, self.app.size.width - 2),
            )
        )

    def show_crumbs(self) -> None:
        self.query_one("#crumbs", Static).update(
            status.crumbs(self.stack, self.state, self.table.source, self.working)
        )

    def show_working(self, what: str | None) -> None:
        """A call without a dialog runs: say so, with the time it has taken."""
        if self._working_timer is not None:
            self._working_timer.stop()
            self._working_timer = None
        if what is None:
            self.working = None
        else:
            self.working = (what, time.monotonic())
            self._working_timer = self.set_interval(0.1, self.show_crumbs)
        self.show_crumbs()

    # -- loading -------------------------------------------------------------------------

    def open_view(self) -> None:
        """Show the current state's view from scratch (a switch, a drill, a back)."""
        self.generation += 1
        self._after_rows.clear()  # keys pressed for the view being left
        spec = self.state.spec
        self.table.empty_text = "loading…"
        self.table.sort_column = self.state.sort_column
        self.table.sort_descending = self.state.sort_descending
        self.table.marked = self.state.marks
        self._apply_wide()
        self._layout_for(self.size.width)
        self.table.set_source(spec.columns, ListSource([]))
        self.query_one("#detail", Static).update("")
        self._bind()
        self.show_crumbs()
        self.reload()

    def reload(self, from_top: bool = False) -> None:
        """Fetch the current view again (timer, ctrl+r, after an action); ``from_top``
        puts the cursor on the first row (a new filter's first match).

        At most one load of a view runs at a time: asking again meanwhile queues one
        more load for when it finishes, so a slow database never piles up queries.
        """
        if self.loading and self._loading_generation == self.generation:
            self._reload_again = True
            return
        self._loading_generation = self.generation
        self.loading = True
        self.show_header()
        state = self.state
        current = self.table.current_row
        # A newest-first view whose cursor is on its first row follows new rows there.
        following = state.spec.newest_first and self.table.cursor == 0 and not state.typed
        from_top = from_top or following
        keep_key = None if from_top else current.key if current else state.cursor_key
        keep_index = 0 if from_top else self.table.cursor
        generation = self.generation
        spec = state.spec
        first = self.context.take_first_rows(spec.name)
        if first is not None and spec.fetch_page is None and not state.scope:
            # Read before the service was open (`netcon`'s first screen).
            rows = [self._row(spec, item) for item in first]
            self._rows_loaded(generation, state, rows, keep_key, keep_index)
        elif spec.fetch_page is not None:
            descending = state.sort_column == 0 and state.sort_descending
            fetch_page = spec.fetch_page

            def read_pages(api: NetconAPI) -> tuple[int, dict[int, list[Row]]]:
                first = fetch_page(api, state.scope, state.search, 0, PAGE_SIZE)
                total = first.total
                pages = {0: [self._row(spec, item) for item in first.rows]}
                position = total - 1 - keep_index if descending else keep_index
                wanted = {max(0, min(position, total - 1)) // PAGE_SIZE}
                if descending:
                    wanted.add(max(0, total - 1) // PAGE_SIZE)
                for number in sorted(wanted - {0}):
                    page = fetch_page(api, state.scope, state.search, number * PAGE_SIZE,
                                      PAGE_SIZE)
                    pages[number] = [self._row(spec, item) for item in page.rows]
                return total, pages

            call_service(
                self, self.service, read_pages,
                lambda result: self._pages_loaded(generation, state, result, keep_key,
                                                  keep_index),
                lambda failure: self._load_failed(generation, failure), group="load",
            )
        else:
            fetch = spec.fetch
            assert fetch is not None
            call_service(
                self, self.service,
                lambda api: [self._row(spec, item) for item in fetch(api, state.scope)],
                lambda rows: self._rows_loaded(generation, state, rows, keep_key, keep_index),
                lambda failure: self._load_failed(generation, failure), group="load",
            )

    def _row(self, spec: ViewSpec[Any], item: object) -> Row:
        cells = spec.cells(item)
        if spec.pending_column is not None:
            count = self.pending.count(spec.host(item) or "")
            cells = (
                *cells[: spec.pending_column],
                cells[spec.pending_column] if count is None else str(count),
                *cells[spec.pending_column + 1 :],
            )
        return Row(spec.key(item), cells, item)

    def _rows_loaded(
        self,
        generation: int,
        state: ViewState,
        rows: list[Row],
        keep_key: Hashable | None,
        keep_index: int,
    ) -> None:
        if self._stale(generation, state):
            return
        source = ListSource(rows)
        source.apply(matcher(state.search), state.sort_column, state.sort_descending)
        self._loaded(source, keep_key, keep_index)

    def _pages_loaded(
        self,
        generation: int,
        state: ViewState,
        result: tuple[int, dict[int, list[Row]]],
        keep_key: Hashable | None,
        keep_index: int,
    ) -> None:
        if self._stale(generation, state):
            return
        total, pages = result
        descending = state.sort_column == 0 and state.sort_descending
        paged = PagedSource(total, PAGE_SIZE, self._request_window, descending=descending)
        for number, rows in pages.items():
            paged.put(number * PAGE_SIZE, rows)
        self._loaded(paged, keep_key, keep_index)

    def _stale(self, generation: int, state: ViewState) -> bool:
        if generation != self.generation or state is not self.state:
            self._load_finished()
            return True
        return False

    def _loaded(
        self, source: ListSource | PagedSource, keep_key: Hashable | None, keep_index: int
    ) -> None:
        present = {
            row.key for row in getattr(source, "all_rows", [])
        } if isinstance(source, ListSource) else None
        if present is not None:
            self.state.marks &= present  # a marked row that is gone is no longer marked
        self._show_source(source, keep_key, keep_index)
        self._shown_generation = self.generation
        self._focus_table_if_lost()
        self.last_refresh = self.context.clock().strftime("%H:%M:%S")
        self._load_finished()
        waiting, self._after_rows = self._after_rows, []
        for then in waiting:
            then()
        if not self._started:
            # The first rows may be set while the screen mounts (`netcon`'s lean start),
            # and the table's Highlighted message would then reach the detail pane a
            # frame later: the first screen shows its cursor row's detail with its rows.
            self._show_detail()
            # The first rows are up: only once they are drawn read names for pickers and
            # what the host still owes, so that neither delays the first screen.
            self._started = True
            self.call_after_refresh(self.refresh_known)
            self.call_after_refresh(self.read_pending)

    def _load_finished(self) -> None:
        self.loading = False
        self.show_header()
        if self._reload_again:
            self._reload_again = False
            self.reload()
        else:
            self.arm_timer()

    def _show_source(
        self, source: ListSource | PagedSource, keep_key: Hashable | None, keep_index: int
    ) -> None:
        table = self.table
        scroll_y = table.scroll_y
        spec = self.state.spec
        if self.state.typed:
            table.empty_text = "nothing matches the filter (Esc clears it)"
        elif self.state.scope:
            table.empty_text = f"no {spec.noun[1]} here"
        else:
            table.empty_text = spec.empty
        table.marked = self.state.marks
        table.set_source(spec.columns, source, keep_key, keep_index)
        self.show_keys()
        # Keep the rows where the eye left them when the cursor is still on screen.
        if scroll_y <= table.cursor < scroll_y + table.size.height - 1:
            table.scroll_to(y=scroll_y, animate=False, immediate=True)
        self.show_crumbs()

    def _load_failed(self, generation: int, failure: Failure) -> None:
        if generation == self.generation:
            self.table.empty_text = "could not load"
            self.table.refresh()
            self._after_rows.clear()
        self._load_finished()
        self.notify(failure.message, title="Refresh failed", severity="error")

    def _request_window(self, offset: int) -> None:
        # Called while drawing: start the fetch after the frame, never inside it.
        self.call_later(self._fetch_window, self.generation, self.state, offset)

    def _fetch_window(self, generation: int, state: ViewState, offset: int) -> None:
        spec = state.spec
        fetch_page = spec.fetch_page
        assert fetch_page is not None
        call_service(
            self, self.service,
            lambda api: [
                self._row(spec, item)
                for item in fetch_page(api, state.scope, state.search, offset, PAGE_SIZE).rows
            ],
            lambda rows: self._window_arrived(generation, state, offset, rows),
            lambda failure: self.notify(failure.message, severity="error"),
            group="window",
        )

    def _window_arrived(
        self, generation: int, state: ViewState, offset: int, rows: list[Row]
    ) -> None:
        source = self.table.source
        if generation == self.generation and state is self.state and isinstance(
            source, PagedSource
        ):
            source.put(offset, rows)
            self.table.rows_arrived()

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

        def keep(known: Known) -> None:
            self.known = known

        call_service(self, self.service, read, keep, lambda failure: None, group="known")

    # -- what the hosts still owe ------------------------------------------------------

    def read_pending(self) -> None:
        source = self.context.pending_source
        if source is None or self._pending_reading:
            return
        self._pending_reading = True
        call_service(self, self.service, source, self._pending_arrived,
                     lambda failure: self._pending_arrived(UNKNOWN), group="pending")

    def _pending_arrived(self, pending: Pending) -> None:
        self._pending_reading = False
        before = self.pending
        self.pending = pending
        self.show_header()
        self.table.refresh()
        self._show_detail()
        if self.state.spec.pending_column is not None and before != pending:
            self.reload()

    def _row_pending(self, row: Row) -> bool:
        spec = self.state.spec
        if not self.pending.known or spec.whole_plan:
            return False
        host = spec.host(row.item) or self.this_host()
        return self.pending.marks(host, spec.subjects(row.item))

    def reads_host(self) -> bool:
        """Whether this console looks at the host's kernel (and so may ask it about a
        change); a source of fixed plans (pictures, tests) does not."""
        return self.context.pending_source is read_pending

    def changed(
        self, action: BaseAction, message: str, owing: OwingView | None, warn: bool
    ) -> None:
        """An action succeeded: show it, and where the hosts stand, as the core said."""
        if isinstance(action, RowAction) and action.bulk and self.state.marks:
            # The marks were for this action: done, they would only mislead the next.
            self.state.marks.clear()
            self.table.marked = self.state.marks
            self.show_crumbs()
        self.reload()
        self.refresh_known()
        text = status.told(message, owing, saved=action.host_change)
        self.notify(text, severity="warning" if warn else "information", timeout=6)
        if owing is not None and (owing.pending_on or owing.applied_on) or action.host_change:
            self._pending_reading = False
            self.read_pending()

    # -- live refresh --------------------------------------------------------------------

    def arm_timer(self) -> None:
        """Schedule the next refresh once this one has finished, so a slow database
        never piles up overlapping refreshes."""
        if self._timer is not None:
            self._timer.stop()
        interval = self.context.refresh_interval
        if interval > 0:
            self._timer = self.set_timer(interval, self._tick)

    def _tick(self) -> None:
        # Skip while paused or while a dialog is open; the data would move under it.
        if self.paused or self.app.screen is not self or self.loading:
            self.arm_timer()
            return
        self.reload()
        self.read_pending()

    def action_scroll_detail(self, lines: int) -> None:
        self.query_one("#detail-pane", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_refresh_now(self) -> None:
        self.reload()
        self.read_pending()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.show_header()
        self.notify("Refresh paused" if self.paused else "Refresh resumed", timeout=2)
        if not self.paused:
            self.action_refresh_now()

    # -- table events --------------------------------------------------------------------

    @on(VirtualTable.Highlighted)
    def _highlighted(self, event: VirtualTable.Highlighted) -> None:
        if event.row is not None:
            self.state.cursor_key = event.row.key
            self.state.cursor_index = event.index
        self._show_detail()
        self.refresh_bindings()

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        row = self.table.current_row
        if row is None:
            detail.update("")
            return
        spec = self.state.spec
        content = spec.detail(row.item)
        extra = status.pending_detail(
            spec, row.item, self.pending, self.this_host(), self.context.read_only
        )
        detail.update(Content.assemble(content, *extra))
        # The pane's scroll bar comes and goes with the text's length, and Textual can
        # keep the text's old height when it does: measure it again once laid out.
        self.call_after_refresh(detail.refresh, layout=True)

    @on(VirtualTable.Selected)
    def _selected(self) -> None:
        self.action_open()

    @on(VirtualTable.HeaderClicked)
    def _header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        if self.state.sort_column == event.column:
            self.state.sort_descending = not self.state.sort_descending
        else:
            self.state.sort_column, self.state.sort_descending = event.column, False
        self._resort()

    # -- navigation ----------------------------------------------------------------------

    def current_item(self) -> object | None:
        row = self.table.current_row
        return row.item if row is not None else None

    def switch_to(self, spec: ViewSpec[Any]) -> None:
        if spec is not self.state.spec or self.stack:
            self.previous = self.state
        self.stack.clear()
        self.state = ViewState(spec)
        self.open_view()
        self.table.focus()

    def go(self, drill: Drill) -> None:
        if drill.open is not None:
            self.runner.open_drill(drill)
            return
        self.stack.append(self.state)
        spec = VIEWS[drill.view]
        self.state = ViewState(spec, dict(drill.scope), f"{drill.crumb} › {spec.title}")
        self.open_view()

    def _when_rows_are_current(self, then: Callable[[], None]) -> bool:
        """True when the table shows the rows of the view as it is now; else ``then``
        runs once they arrive."""
        if self._shown_generation == self.generation:
            return True
        self._after_rows.append(then)
        return False

    def action_open(self) -> None:
        if not self._when_rows_are_current(self.action_open):
            return
        item = self.current_item()
        if item is None:
            return
        drill = self.state.spec.drill(item)
        if drill is None:
            self.notify(f"Nothing below this {self.state.spec.noun[0]}", timeout=2)
            return
        self.go(drill)

    def _prompt_open(self) -> bool:
        return any(prompt.is_open for prompt in self.query(Prompt))

    def action_back(self) -> None:
        """Esc: close a prompt (the filter's also drops the filter), clear the filter,
        clear the marks, then go back."""
        if self._prompt_open():
            if self.query_one("#filter", Prompt).is_open:
                self._set_filter("")
            for prompt in self.query(Prompt):
                prompt.close()
            return
        if self.state.typed:
            self._set_filter("")
            return
        if self.state.marks:
            self.state.marks.clear()
            self.table.refresh()
            self.show_crumbs()
            return
        if self.stack:
            self.state = self.stack.pop()
            self.open_view()

    def action_previous(self) -> None:
        """`-`: back to the view before the last `:` switch, as k9s does."""
        if self.previous is None:
            self.notify("No previous view yet", timeout=2)
            return
        previous, self.previous = self.previous, self.state
        self.stack.clear()
        self.state = previous
        self.open_view()

    def action_command_line(self) -> None:
        self.query_one("#command", CommandPrompt).open()

    def action_filter(self) -> None:
        self.query_one("#filter", Prompt).open(self.state.typed)

    @on(Prompt.Closed)
    def _prompt_closed(self) -> None:
        if not self._prompt_open() and self.app.screen is self:
            self.set_focus(self.table)

    def _close_prompt(self, prompt: Prompt) -> None:
        """Close ``prompt`` and give the table the focus now, before the next key is
        read: a key typed right after Enter is meant for the table."""
        prompt.close()
        if not self._prompt_open():
            self.set_focus(self.table)

    def prompt_submitted(self, prompt: Prompt, value: str) -> None:
        if prompt.id == "filter":
            self._set_filter(value)
            self._close_prompt(prompt)
        elif isinstance(prompt, CommandPrompt):
            self._command(prompt, value)

    def prompt_cancelled(self, prompt: Prompt) -> None:
        if prompt.id == "filter":
            self._set_filter("")
        self._close_prompt(prompt)

    def _command(self, prompt: CommandPrompt, value: str) -> None:
        word = value.strip().lstrip(":")
        if not word:
            self._close_prompt(prompt)
            return
        if word.lower() in ("q", "quit"):
            self.app.exit()
            return
        if word.split()[0].lower() == "ctx":
            self._close_prompt(prompt)
            contexts.command(self, word[3:].strip())
            return
        spec = resolve(word)
        if spec is None:
            candidates = prompt.candidates()
            hint = f"; did you mean {', '.join(candidates[:4])}?" if candidates else (
                "; try :networks, :fip, :vpn (Tab completes)"
            )
            self.notify(f"no view named {word!r}{hint}", severity="warning")
            return  # the prompt stays open with what was typed
        self._close_prompt(prompt)
        if self.context.memory is not None:
            prompt.history = self.context.memory.remember(spec.aliases[0])
        else:
            prompt.history = [*prompt.history, spec.aliases[0]]
        self.switch_to(spec)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self.query_one("#filter", Prompt).is_open:
            self._set_filter(event.value)

    def _set_filter(self, typed: str) -> None:
        typed = typed.strip()
        if typed == self.state.typed:
            return
        search = Search.parse(typed)
        self.state.typed = typed
        source = self.table.source
        # A new filter puts the cursor on its first match.
        if isinstance(source, ListSource) and not self.state.spec.paged:
            source.apply(matcher(search), self.state.sort_column, self.state.sort_descending)
            self._show_source(source, None, 0)
        else:
            # A paged view filters in the database; the answer replaces the table.
            self.generation += 1
            self.reload(from_top=True)
        self.show_crumbs()

    # -- marks and sorting ------------------------------------------------------------

    def action_mark(self) -> None:
        row = self.table.current_row
        if row is None:
            return
        self.state.marks ^= {row.key}
        self.table.marked = self.state.marks
        self.table.action_cursor_down()
        self.table.refresh()
        self.show_crumbs()

    def action_mark_range(self) -> None:
        marks.mark_range(self)

    def action_sort_by(self, column: int) -> None:
        """Shift+a column's letter: sort by it; again, the other way (as k9s does)."""
        state = self.state
        if state.sort_column == column:
            state.sort_descending = not state.sort_descending
        else:
            state.sort_column, state.sort_descending = column, False
        self._resort()

    def context_switched(self) -> None:
        """Another database (`:ctx`): start over on the same view, nothing carried over."""
        self.stack.clear()
        self.previous = None
        self.state = ViewState(self.state.spec)
        self.pending = UNKNOWN
        self.known = Known()
        self._pending_reading = False
        self.open_view()
        self.refresh_known()
        self.read_pending()

    # -- wide mode, describe, copy ----------------------------------------------------

    def _apply_wide(self) -> None:
        wide = self.state.spec.name in self.wide_views
        self.table.hidden = hidden_of(self, self.state.spec)
        self.table.set_wide(wide)
        self.query_one("#body").set_class(wide, "-all-columns")

    def action_wide(self) -> None:
        """`w`: every column of this view at full width, or back; kept between runs."""
        name = self.state.spec.name
        self.wide_views ^= {name}
        if self.context.memory is not None:
            self.context.memory.keep_wide(self.wide_views)
        self._apply_wide()
        self.notify("All columns" if name in self.wide_views else "Columns that fit",
                    timeout=2)

    def action_columns(self) -> None:
        choose_columns(self)

    def action_describe(self) -> None:
        if self._when_rows_are_current(self.action_describe):
            describe.describe_current(self)

    def action_copy(self) -> None:
        if self._when_rows_are_current(self.action_copy):
            describe.copy_current(self)

    def action_sort(self) -> None:
        state = self.state
        columns = len(state.spec.columns)
        if state.spec.paged:
            # Paged rows come in address order from the database; flip it instead.
            state.sort_column = 0
            state.sort_descending = not state.sort_descending
        elif state.sort_column is None:
            state.sort_column, state.sort_descending = 0, False
        elif not state.sort_descending:
            state.sort_descending = True
        else:
            state.sort_column = (state.sort_column + 1) % columns
            state.sort_descending = False
        self._resort()

    def action_sort_reverse(self) -> None:
        if self.state.sort_column is None:
            self.state.sort_column = 0
        self.state.sort_descending = not self.state.sort_descending
        self._resort()

    def _resort(self) -> None:
        state = self.state
        if state.spec.paged and state.sort_column not in (None, 0):
            state.sort_column = 0
            self.notify(f"{state.spec.title} sort by address only", severity="warning",
                        timeout=3)
        self.table.sort_column = state.sort_column
        self.table.sort_descending = state.sort_descending
        source = self.table.source
        if isinstance(source, ListSource) and not state.spec.paged:
            source.apply(matcher(state.search), state.sort_column, state.sort_descending)
            self._show_source(source, state.cursor_key, 0)
        else:
            self.generation += 1
            self.reload()
        self.show_crumbs()

    # -- actions -------------------------------------------------------------------------

    def action_run(self, action_id: str) -> None:
        action = self._action(action_id)
        if action is None:
            return
        if isinstance(action, ViewAction):
            self.runner.run_view_action(action)
            return
        if not self._when_rows_are_current(partial(self.action_run, action_id)):
            return
        self.runner.run_row_action(self.state.spec, action, self._targets(action))

    def _targets(self, action: RowAction[Any]) -> list[object]:
        """The marked rows for an action that takes marks, else the highlighted row."""
        source = self.table.source
        if action.bulk and self.state.marks and isinstance(source, ListSource):
            return [row.item for row in source.all_rows if row.key in self.state.marks]
        item = self.current_item()
        return [] if item is None else [item]

    # -- help and palette -------------------------------------------------------------

    def help_sections(self) -> list[tuple[str, list[HelpEntry]]]:
        """The keys that work here, as bound, with their binding ids."""
        from tui.screens.help import HelpEntry

        view = [
            HelpEntry(self._key(a.id, a.key), a.label + (" (marks)" if isinstance(
                a, RowAction) and a.bulk else ""), a.id)
            for a in self.state.spec.actions
            if self._enabled(a)
        ]
        general = [HelpEntry(self._key(s.id, s.key), s.label, s.id) for s in GENERAL]
        general += [
            HelpEntry("ctrl+p", "Palette: every view and action"),
            HelpEntry("ctrl+q", "Quit"),
        ]
        table = [HelpEntry(k, d) for k, d in TABLE_KEYS]
        table.append(HelpEntry("~ in a row", "its change waits for the host's apply"))
        sections = [(self.state.spec.title, view)] if view else []
        sections += [("General", general), ("Table", table)]
        sorts = [HelpEntry(self._key(s.id, s.key), s.label, s.id) for s in self.sort_specs]
        if sorts:
            sections.append(("Sort (again: the other way)", sorts))
        return sections

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.help_sections()))

    def palette_entries(self) -> list[PaletteEntry]:
        entries = [
            PaletteEntry(
                f"View: {spec.title}", partial(self.switch_to, spec),
                f":{spec.aliases[0]}  ({', '.join(spec.aliases[1:3])})",
            )
            for spec in VIEWS.values()
            if spec.listed
        ]
        title = self.state.spec.title
        for action in self.state.spec.actions:
            if self._enabled(action):
                entries.append(
                    PaletteEntry(
                        f"{title}: {action.label}",
                        partial(self.action_run, action.id),
                        f"key {self._key(action.id, action.key)}  ({action.id})",
                    )
                )
        return entries
