"""The one screen of the console: a header, breadcrumbs, the table of the current view
and the detail pane of its highlighted row, with the ``:`` command line and ``/`` filter.

Views switch inside this screen (``:networks``); Enter narrows to what a row owns and
pushes the current view on a stack that Esc pops. Reading the database always happens in
thread workers; results come back with the view's generation number so that a late
answer for a view the admin already left is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from core.errors import NetconError
from tui.screens.actions import ActionsMixin
from tui.screens.resources import ALIASES, RESOURCES, Resource, Scope, resolve
from tui.widgets.virtual_table import ListSource, PagedSource, Row, VirtualTable

if TYPE_CHECKING:
    from tui.app import NetconApp

PAGE_SIZE = 200


def short_url(url: str, width: int = 36) -> str:
    """The database URL for an 80-column header: scheme and file name survive."""
    if len(url) <= width:
        return url
    scheme, _, rest = url.partition("://")
    tail = rest[-(width - len(scheme) - 4):]
    return f"{scheme}://…{tail}"


@dataclass
class ViewState:
    """Where the admin is: which view, narrowed to what, filtered and sorted how."""

    resource: Resource
    scope: Scope = field(default_factory=dict)
    crumb: str = ""
    search: str = ""
    sort_column: int | None = None
    sort_descending: bool = False
    cursor_key: Hashable | None = None
    cursor_index: int = 0


class MainScreen(ActionsMixin, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: handled as the key arrives, so the prompt has the focus before the
        # rest of a fast-typed `:fip` is delivered. Disabled while typing in a prompt.
        Binding("colon", "command_line", "View", priority=True,
                tooltip="Switch view: :networks, :fip, …"),
        Binding("slash", "filter", "Filter", priority=True),
        Binding("enter", "drill", "Open", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("s", "sort", "Sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False),
        Binding("ctrl+r", "refresh_now", "Refresh", show=False),
        Binding("p", "toggle_pause", "Pause", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("J", "scroll_detail(3)", "Scroll detail down", show=False),
        Binding("K", "scroll_detail(-3)", "Scroll detail up", show=False),
        *ActionsMixin.ACTION_BINDINGS,
    ]

    def __init__(self, start: str = "networks") -> None:
        super().__init__()
        self.state = ViewState(RESOURCES[start])
        self.stack: list[ViewState] = []
        self.generation = 0
        self.paused = False
        self.loading = False
        self.last_refresh: str = "never"
        self._timer: Timer | None = None
        self._loading_generation = -1
        self._reload_again = False
        self._inputs_open = False

    @property
    def netcon(self) -> NetconApp:
        return self.app  # type: ignore[return-value]

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="crumbs")
        with Horizontal(id="body"):
            yield VirtualTable(id="table")
            with VerticalScroll(id="detail-pane"):
                yield Static(id="detail")
        yield Input(
            id="command",
            placeholder="view: projects networks fixed floating vpn instances secgroups "
            "hosts audit",
            compact=True,
            suggester=SuggestFromList(sorted(ALIASES), case_sensitive=False),
            classes="prompt",
        )
        yield Input(id="filter", placeholder="filter", compact=True, classes="prompt")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # The keys stay with the table; J and K scroll the detail pane instead.
        self.query_one("#detail-pane").can_focus = False
        self._layout_for(self.size.width)
        self.open_view()
        self.refresh_project_names()

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self._focus_table_if_lost)

    def _focus_table_if_lost(self) -> None:
        # The first layout pass hides and blurs the table once, and focus falls to the
        # detail pane; the table is where the keys belong, so take it back once.
        if self.app.screen is not self:
            return
        if self.focused is None:
            self.set_focus(self.table)

    def on_resize(self) -> None:
        self._layout_for(self.size.width)

    def _layout_for(self, width: int) -> None:
        # Wide terminals get the detail beside the table; 80 columns get it below.
        self.query_one("#body").set_class(width >= 120, "-wide")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#table", VirtualTable)

    # -- header and breadcrumbs ----------------------------------------------------------

    def show_header(self) -> None:
        # Content, not markup: a database URL or a filter may hold brackets.
        service = self.netcon.service
        parts: list[str | tuple[str, str]] = [
            ("netcon", "bold"), "  host ", (service.settings.host, "bold"),
            f"  refreshed {self.last_refresh}",
        ]
        if self.netcon.read_only:
            parts += ["  ", ("read-only", "bold $warning")]
        if self.paused:
            parts += ["  ", ("paused", "bold $warning")]
        elif self.loading:
            parts.append("  loading…")
        parts.append(f"  db {short_url(service.db.safe_url)}")
        self.query_one("#header", Static).update(Content.assemble(*parts))

    def show_crumbs(self) -> None:
        parts: list[str | tuple[str, str]] = []
        for state in self.stack:
            parts += [state.crumb or state.resource.title, " › "]
        parts.append((self.state.crumb or self.state.resource.title, "bold"))
        parts.append(f" ({self.table.source.total})")
        if self.state.search:
            parts += ["  ", (f"/{self.state.search}", "bold $accent")]
        if self.state.sort_column is not None:
            column = self.state.resource.columns[self.state.sort_column]
            parts.append(f"  sort {column.label} {'▼' if self.state.sort_descending else '▲'}")
        self.query_one("#crumbs", Static).update(Content.assemble(*parts))

    # -- loading -------------------------------------------------------------------------

    def open_view(self) -> None:
        """Show the current state's view from scratch (a switch, a drill, a back)."""
        self.generation += 1
        resource = self.state.resource
        self.table.empty_text = "loading…"
        self.table.sort_column = self.state.sort_column
        self.table.sort_descending = self.state.sort_descending
        self.table.set_source(resource.columns, ListSource([]))
        self.query_one("#detail", Static).update("")
        self.show_crumbs()
        self.refresh_bindings()
        self.reload()

    def reload(self) -> None:
        """Fetch the current view again in a worker (timer, ctrl+r, after an action).

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
        keep_key = current.key if current else state.cursor_key
        keep_index = self.table.cursor
        self._load(self.generation, state, keep_key, keep_index)

    @work(thread=True, group="load", exit_on_error=False)
    def _load(
        self, generation: int, state: ViewState, keep_key: Hashable | None, keep_index: int
    ) -> None:
        resource = state.resource
        service = self.netcon.service
        result: Any
        try:
            if resource.fetch_page is not None:
                descending = state.sort_column == 0 and state.sort_descending
                result = self._fetch_pages(service, state, keep_index, descending)
            else:
                assert resource.fetch is not None
                scope = {**state.scope, "host_plans": self.netcon.host_plans}
                result = [resource.row(item) for item in resource.fetch(service, scope)]
        except NetconError as exc:
            self.app.call_from_thread(self._load_failed, generation, exc.message)
            return
        except Exception as exc:  # a broken database must not take the console down
            self.app.call_from_thread(self._load_failed, generation, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._loaded, generation, state, result, keep_key, keep_index)

    @work(thread=True, group="names", exit_on_error=False)
    def refresh_project_names(self) -> None:
        """Project names for the dialogs' completion; read at start and after actions,
        not on every refresh (counting a big cloud's projects is not free)."""
        try:
            names = {p.name for p in self.netcon.service.list_projects()}
        except Exception:  # completion is a convenience; the dialogs work without it
            return
        self.netcon.known_projects = names

    def _fetch_pages(
        self, service: Any, state: ViewState, around: int, descending: bool
    ) -> tuple[int, dict[int, list[Row]]]:
        resource = state.resource
        assert resource.fetch_page is not None
        first = resource.fetch_page(service, state.scope, state.search, 0, PAGE_SIZE)
        total = first.total
        pages = {0: [resource.row(item) for item in first.rows]}
        position = total - 1 - around if descending else around
        wanted = {max(0, min(position, total - 1)) // PAGE_SIZE}
        if descending:
            wanted.add(max(0, total - 1) // PAGE_SIZE)
        for number in sorted(wanted - {0}):
            page = resource.fetch_page(
                service, state.scope, state.search, number * PAGE_SIZE, PAGE_SIZE
            )
            pages[number] = [resource.row(item) for item in page.rows]
        return total, pages

    def _loaded(
        self,
        generation: int,
        state: ViewState,
        result: Any,
        keep_key: Hashable | None,
        keep_index: int,
    ) -> None:
        if generation != self.generation or state is not self.state:
            return
        if state.resource.paged:
            total, pages = result
            descending = state.sort_column == 0 and state.sort_descending
            paged = PagedSource(total, PAGE_SIZE, self._request_window, descending=descending)
            for number, rows in pages.items():
                paged.put(number * PAGE_SIZE, rows)
            source: ListSource | PagedSource = paged
        else:
            source = ListSource(result)
            source.apply(state.search, state.sort_column, state.sort_descending)
        self._show_source(source, keep_key, keep_index)
        self._focus_table_if_lost()
        self.last_refresh = self.netcon.clock().strftime("%H:%M:%S")
        self.loading = False
        self.show_header()

    def _show_source(
        self, source: ListSource | PagedSource, keep_key: Hashable | None, keep_index: int
    ) -> None:
        table = self.table
        scroll_y = table.scroll_y
        table.empty_text = "nothing matches" if self.state.search else "nothing here"
        table.set_source(self.state.resource.columns, source, keep_key, keep_index)
        # Keep the rows where the eye left them when the cursor is still on screen.
        if scroll_y <= table.cursor < scroll_y + table.size.height - 1:
            table.scroll_to(y=scroll_y, animate=False, immediate=True)
        self.show_crumbs()

    def _load_failed(self, generation: int, message: str) -> None:
        self.loading = False
        self.show_header()
        if generation == self.generation:
            self.table.empty_text = "could not load"
            self.table.refresh()
        self.notify(message, title="Refresh failed", severity="error")

    def _request_window(self, offset: int) -> None:
        # Called while drawing: start the fetch after the frame, never inside it.
        self.call_later(self._fetch_window, self.generation, self.state, offset)

    @work(thread=True, group="window", exit_on_error=False)
    def _fetch_window(self, generation: int, state: ViewState, offset: int) -> None:
        resource = state.resource
        assert resource.fetch_page is not None
        try:
            page = resource.fetch_page(
                self.netcon.service, state.scope, state.search, offset, PAGE_SIZE
            )
        except NetconError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            return
        rows = [resource.row(item) for item in page.rows]
        self.app.call_from_thread(self._window_arrived, generation, state, offset, rows)

    def _window_arrived(
        self, generation: int, state: ViewState, offset: int, rows: list[Row]
    ) -> None:
        source = self.table.source
        if generation == self.generation and state is self.state and isinstance(
            source, PagedSource
        ):
            source.put(offset, rows)
            self.table.rows_arrived()

    # -- live refresh --------------------------------------------------------------------

    def arm_timer(self) -> None:
        """Schedule the next refresh; called again only once a refresh has finished, so
        a slow database never piles up overlapping refreshes."""
        if self._timer is not None:
            self._timer.stop()
        interval = self.netcon.refresh_interval
        if interval > 0:
            self._timer = self.set_timer(interval, self._tick)

    def _tick(self) -> None:
        # Skip while paused or while a dialog is open; the data would move under it.
        if self.paused or self.app.screen is not self or self.loading:
            self.arm_timer()
            return
        self.reload()

    def on_worker_state_changed(self, event: Any) -> None:
        if event.worker.group == "load" and event.worker.is_finished:
            if self._reload_again and not self.loading:
                self._reload_again = False
                self.reload()
            else:
                self.arm_timer()

    def action_scroll_detail(self, lines: int) -> None:
        pane = self.query_one("#detail-pane", VerticalScroll)
        pane.scroll_relative(y=lines, animate=False)

    def action_refresh_now(self) -> None:
        self.reload()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.show_header()
        self.notify("Refresh paused" if self.paused else "Refresh resumed", timeout=2)

    # -- table events --------------------------------------------------------------------

    @on(VirtualTable.Highlighted)
    def _highlighted(self, event: VirtualTable.Highlighted) -> None:
        detail = self.query_one("#detail", Static)
        if event.row is None:
            detail.update("")
            return
        self.state.cursor_key = event.row.key
        self.state.cursor_index = event.index
        detail.update(self.state.resource.detail(event.row.item))
        self.refresh_bindings()

    @on(VirtualTable.Selected)
    def _selected(self) -> None:
        self.action_drill()

    @on(VirtualTable.HeaderClicked)
    def _header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        if self.state.sort_column == event.column:
            self.state.sort_descending = not self.state.sort_descending
        else:
            self.state.sort_column, self.state.sort_descending = event.column, False
        self._resort()

    # -- navigation ----------------------------------------------------------------------

    def switch_to(self, resource: Resource) -> None:
        self.stack.clear()
        self.state = ViewState(resource)
        self.open_view()
        self.table.focus()

    def action_drill(self) -> None:
        row = self.table.current_row
        if row is None:
            return
        target = self.state.resource.drill(row.item)
        if target is None:
            self.notify(f"Nothing below this {self.state.resource.title.lower()} row", timeout=2)
            return
        self.stack.append(self.state)
        resource = RESOURCES[target.resource]
        self.state = ViewState(resource, dict(target.scope), f"{target.crumb} › {resource.title}")
        self.open_view()

    def action_back(self) -> None:
        focused = self.focused
        if isinstance(focused, Input) and focused.has_class("prompt"):
            # Esc in a prompt closes it; in the filter it also clears the filter.
            if focused.id == "filter":
                focused.value = ""
                self._set_search("")
            self._close_prompts()
            return
        if self.state.search:
            self.query_one("#filter", Input).value = ""
            self._set_search("")
            return
        if self.stack:
            self.state = self.stack.pop()
            self.open_view()

    def action_command_line(self) -> None:
        self._open_prompt("#command")

    def action_filter(self) -> None:
        self._open_prompt("#filter", self.state.search)

    def _open_prompt(self, selector: str, value: str = "") -> None:
        for prompt in self.query(".prompt"):
            prompt.remove_class("-open")
        prompt = self.query_one(selector, Input)
        prompt.value = value
        prompt.add_class("-open")
        # Focus now, not after the queued keys: `:fip` typed fast must land in the prompt.
        self.set_focus(prompt)

    def _close_prompts(self) -> None:
        for prompt in self.query(".prompt"):
            prompt.remove_class("-open")
        self.set_focus(self.table)

    @on(Input.Submitted, "#command")
    def _command(self, event: Input.Submitted) -> None:
        word = event.value.strip()
        self._close_prompts()
        if not word:
            return
        if word in {"q", "quit"}:
            self.app.exit()
            return
        resource = resolve(word)
        if resource is None:
            self.notify(f"no view named {word!r}; try :networks, :fip, :vpn", severity="warning")
            return
        self.switch_to(resource)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if event.input.has_class("-open"):
            self._set_search(event.value.strip())

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self._close_prompts()

    def _set_search(self, search: str) -> None:
        if search == self.state.search:
            return
        self.state.search = search
        source = self.table.source
        if isinstance(source, ListSource):
            source.apply(search, self.state.sort_column, self.state.sort_descending)
            self._show_source(source, self.state.cursor_key, 0)
        else:
            # A paged view filters in the database; the answer replaces the table.
            self.generation += 1
            self.reload()
        self.show_crumbs()

    # -- sorting -------------------------------------------------------------------------

    def action_sort(self) -> None:
        columns = len(self.state.resource.columns)
        if self.state.resource.paged:
            # Paged rows come in address order from the database; flip it instead.
            self.state.sort_column = 0
            self.state.sort_descending = not self.state.sort_descending
        elif self.state.sort_column is None:
            self.state.sort_column, self.state.sort_descending = 0, False
        elif not self.state.sort_descending:
            self.state.sort_descending = True
        else:
            self.state.sort_column = (self.state.sort_column + 1) % columns
            self.state.sort_descending = False
        self._resort()

    def action_sort_reverse(self) -> None:
        if self.state.sort_column is None:
            self.state.sort_column = 0
        self.state.sort_descending = not self.state.sort_descending
        self._resort()

    def _resort(self) -> None:
        state = self.state
        if state.resource.paged and state.sort_column not in (None, 0):
            state.sort_column = 0
            self.notify("Fixed IPs sort by address only", severity="warning", timeout=3)
        self.table.sort_column = state.sort_column
        self.table.sort_descending = state.sort_descending
        source = self.table.source
        if isinstance(source, ListSource) and not state.resource.paged:
            source.apply(state.search, state.sort_column, state.sort_descending)
            self._show_source(source, state.cursor_key, 0)
        else:
            self.generation += 1
            self.reload()
        self.show_crumbs()

    # -- help ----------------------------------------------------------------------------

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The keys that work here, grouped; read from the live binding chain."""
        view_keys: list[tuple[str, str]] = []
        general: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for active in self.active_bindings.values():
            binding = active.binding
            # The table's own keys are listed by hand below, in a shorter form.
            if active.node is not self and binding.action not in ("quit", "command_palette"):
                continue
            if binding.action.startswith(("app.focus", "screen.")):
                continue  # Textual's own screen keys: no use on this screen
            if not active.enabled or not binding.description:
                continue
            entry = (self.app.get_key_display(binding), binding.description)
            if entry in seen:
                continue
            seen.add(entry)
            (view_keys if binding.action in self.MUTATING else general).append(entry)
        table_keys = [
            ("↑↓ j k", "move"),
            ("PgUp PgDn", "page"),
            ("g G", "first / last row"),
            ("← → h l", "scroll sideways"),
            ("enter", "open what the row owns"),
            ("esc", "clear filter, then back"),
        ]
        sections = [(self.state.resource.title, view_keys)] if view_keys else []
        sections += [("General", general), ("Table", table_keys)]
        return sections

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.help_sections()))

    # -- helpers for actions -------------------------------------------------------------

    def current_item(self) -> Any:
        row = self.table.current_row
        return row.item if row is not None else None

    def run_service(
        self,
        what: str,
        call: Callable[[Any], Any],
        done: Callable[[Any], str] | None = None,
    ) -> None:
        """Run one service call in a worker; a refusal becomes a notification and the
        table stays as it was."""
        self._run_service(what, call, done)

    @work(thread=True, group="action", exit_on_error=False)
    def _run_service(
        self, what: str, call: Callable[[Any], Any], done: Callable[[Any], str] | None
    ) -> None:
        try:
            result = call(self.netcon.service)
        except NetconError as exc:
            self.app.call_from_thread(
                self.notify, exc.message, title=f"{what} refused", severity="error", timeout=8
            )
            return
        except Exception as exc:  # never let an unexpected error close the console
            self.app.call_from_thread(
                self.notify, f"{type(exc).__name__}: {exc}", title=f"{what} failed",
                severity="error", timeout=8,
            )
            return
        message = done(result) if done else f"{what}: done"
        self.app.call_from_thread(self._action_done, message)

    @work(thread=True, group="action", exit_on_error=False)
    def pick_instance_for(self, floating: Any) -> None:
        try:
            instances = self.netcon.service.list_instances(project=floating.project)
        except NetconError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            return
        self.app.call_from_thread(self.associate_with, floating, instances)

    @work(thread=True, group="action", exit_on_error=False)
    def show_host_plan(self, can_apply: bool) -> None:
        """Compute this host's plan in a worker (it reads netlink and nftables)."""
        from tui.screens.hostplan import PlanScreen

        service = self.netcon.service
        try:
            plan = service.host_plan()
        except NetconError as exc:
            self.app.call_from_thread(self.notify, exc.message, title="Plan", severity="error")
            return
        except Exception as exc:  # a host we cannot read must not close the console
            self.app.call_from_thread(
                self.notify, f"{type(exc).__name__}: {exc}", title="Plan", severity="error"
            )
            return
        screen = PlanScreen(service.settings.host, plan, can_apply)
        self.app.call_from_thread(self.app.push_screen, screen, lambda _: self.reload())

    def _action_done(self, message: str) -> None:
        self.notify(message, timeout=4)
        self.reload()
        self.refresh_project_names()
