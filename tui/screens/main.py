"""The one screen of the console, a generic engine for every view of ``tui/views/``: a
header, breadcrumbs, the table of the current view and the detail pane of its row,
the ``:`` and ``/`` prompts, and a footer of this view's keys.

Views switch inside this screen (``:networks``); Enter narrows to what a row owns and
pushes the current view on a stack that Esc pops; ``-`` returns to the view before the
last switch. The screen's helpers each do one job: :mod:`tui.screens.loader` reads the
rows, :mod:`tui.screens.tracker` what the hosts still owe, :mod:`tui.screens.screen_keys`
binds the keys and describes them, :mod:`tui.screens.prompts` answers `:` and `/`,
:mod:`tui.screens.panes` draws the header, breadcrumbs and detail, and
:mod:`tui.screens.runner` runs the actions. They see the screen as the
:class:`~tui.screens.frame.MainFrame` it is built on, so that none imports this module.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Static

from tui.palette import PaletteEntry
from tui.pending import read_pending
from tui.screens import columns, describe, marks
from tui.screens.answers import ActionAnswer
from tui.screens.frame import MainFrame
from tui.screens.loader import PAGE_SIZE as PAGE_SIZE  # where tests and benches look
from tui.screens.loader import LoaderAnswer, ViewLoader
from tui.screens.panes import Panes
from tui.screens.prompts import PromptAnswers
from tui.screens.runner import ActionRunner
from tui.screens.screen_keys import BINDINGS as SCREEN_BINDINGS
from tui.screens.screen_keys import ScreenKeys
from tui.screens.state import ViewState
from tui.screens.tracker import PendingRead, PendingTracker
from tui.typeahead import KeysMayFlow
from tui.views import VIEWS
from tui.views import completions as view_completions
from tui.views.base import (
    BaseAction,
    Drill,
    Known,
    RowAction,
    Situation,
    ViewAction,
)
from tui.widgets.detail import DetailText
from tui.widgets.keybar import KeyBar
from tui.widgets.prompt import CommandPrompt, Prompt
from tui.widgets.virtual_table import ListSource, Row, VirtualTable

if TYPE_CHECKING:
    from core.views import OwingView
    from tui.context import ConsoleContext
    from tui.screens.help import HelpEntry


class MainScreen(MainFrame):
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

    # The general keys and every view's actions; the keymap set per view (see
    # ScreenKeys.bind) gives keys to this view's.
    BINDINGS: ClassVar[list[BindingType]] = list(SCREEN_BINDINGS)

    loader: ViewLoader
    tracker: PendingTracker
    keys: ScreenKeys
    panes: Panes

    def __init__(self, context: ConsoleContext, start: str = "networks") -> None:
        super().__init__()
        self.context = context
        self.state = ViewState(VIEWS[start])
        self.stack = []
        self.previous = None
        self.paused = False
        self.known = Known()
        self.runner = ActionRunner(self)
        self.loader = ViewLoader(self)
        self.tracker = PendingTracker(self)
        self.keys = ScreenKeys(self)
        self.prompts = PromptAnswers(self)
        self.panes = Panes(self)
        # Both remembered between runs.
        self.wide_views = set(context.memory.wide() if context.memory else ())
        self.hidden_columns = context.memory.hidden_columns() if context.memory else {}

    # -- what the runner and the palette need ------------------------------------------

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
                yield DetailText(id="detail")
        yield CommandPrompt(
            view_completions,
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
        self.table.pending = self.tracker.row_pending
        self.table.follow = self._cursor_moved
        self.layout_for(self.size.width)
        self.keys.check_keymap()
        self.open_view()

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self.focus_table_if_lost)
        # Keys held by a dialog that has closed are this screen's now.
        self.app.post_message(KeysMayFlow())

    def on_resize(self) -> None:
        self.layout_for(self.size.width)
        self.call_after_refresh(self.show_header)


    # -- keys ----------------------------------------------------------------------------

    @property
    def holds_keys(self) -> bool:
        """Typed keys wait while a view opens (they are meant for its rows), behind a
        key that waits for rows being read, and while an action reads what its dialog
        offers (they are meant for the dialog)."""
        return (
            self.loader.opening or self.loader.rows_awaited or self.panes.working is not None
        )

    def lets_through(self, event: events.Key | events.Paste) -> bool:
        """While a view's rows are read, what is typed for the `:` and `/` prompts needs
        none of them: a burst that opens a view and leaves it at once (`:projects`
        Enter) does not wait for rows it never uses, and they are not read."""
        if not self.loader.opening or self.loader.rows_awaited or self.panes.working:
            return False
        if isinstance(self.focused, Prompt):
            return True
        return isinstance(event, events.Key) and event.key in self.keys.prompt_keys()

    @property
    def key_problems(self) -> list[str]:
        return self.keys.problems

    def _action(self, action_id: str) -> RowAction[Any] | ViewAction | None:
        return self.keys.action(action_id)

    def help_sections(self) -> list[tuple[str, list[HelpEntry]]]:
        return self.keys.help_sections()

    def palette_entries(self) -> list[PaletteEntry]:
        return self.keys.palette_entries()

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.help_sections()))

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

    # -- what the workers read --------------------------------------------------------

    def _row_pending(self, row: Row) -> bool:
        return self.tracker.row_pending(row)

    def reads_host(self) -> bool:
        """Whether this console looks at the host's kernel (and so may ask it about a
        change); a source of fixed plans (pictures, tests) does not."""
        return self.context.pending_source is read_pending

    def changed(
        self, action: BaseAction, message: str, owing: OwingView | None, warn: bool
    ) -> None:
        self.tracker.changed(action, message, owing, warn)

    @on(LoaderAnswer)
    def _loader_answer(self, answer: LoaderAnswer) -> None:
        answer.deliver(self.loader)

    @on(PendingRead)
    def _pending_read(self, read: PendingRead) -> None:
        self.tracker.arrived(read)

    @on(ActionAnswer)
    def _action_answer(self, answer: ActionAnswer) -> None:
        answer.deliver(self)

    # -- header and breadcrumbs ----------------------------------------------------------

    def action_scroll_detail(self, lines: int) -> None:
        self.query_one("#detail-pane", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_refresh_now(self) -> None:
        self.loader.reload()
        self.tracker.read()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.show_header()
        self.notify("Refresh paused" if self.paused else "Refresh resumed", timeout=2)
        if not self.paused:
            self.action_refresh_now()

    # -- the view on screen -------------------------------------------------------------

    @property
    def reading(self) -> bool:
        """The view's rows are being read."""
        return self.loader.reading

    def reload(self, from_top: bool = False) -> None:
        self.loader.reload(from_top)

    # -- table events --------------------------------------------------------------------

    def _cursor_moved(self, index: int, row: Row | None) -> None:
        # Called by the table as its cursor moves, so that the detail is drawn in the
        # same frame as the cursor.
        if row is not None:
            self.state.cursor_key = row.key
            self.state.cursor_index = index
        self.show_detail()
        self.refresh_bindings()

    @on(VirtualTable.Selected)
    def _selected(self) -> None:
        self.action_open()

    @on(VirtualTable.HeaderClicked)
    def _header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        if self.state.sort_column == event.column:
            self.state.sort_descending = not self.state.sort_descending
        else:
            self.state.sort_column, self.state.sort_descending = event.column, False
        self.resort()

    # -- navigation ----------------------------------------------------------------------

    def current_item(self) -> object | None:
        row = self.table.current_row
        return row.item if row is not None else None

    def go(self, drill: Drill) -> None:
        if drill.open is not None:
            self.runner.open_drill(drill)
            return
        self.stack.append(self.state)
        spec = VIEWS[drill.view]
        self.state = ViewState(spec, dict(drill.scope), f"{drill.crumb} › {spec.title}")
        self.open_view()

    def action_open(self) -> None:
        if not self.loader.when_rows_are_current(self.action_open):
            return
        item = self.current_item()
        if item is None:
            return
        drill = self.state.spec.drill(item)
        if drill is None:
            self.notify(f"Nothing below this {self.state.spec.noun[0]}", timeout=2)
            return
        self.go(drill)

    def action_back(self) -> None:
        """Esc: close a prompt (the filter's also drops the filter), clear the filter,
        clear the marks, then go back."""
        if self.prompts.any_open():
            self.prompts.close_all()
            return
        if self.state.typed:
            self.prompts.set_filter("")
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
        if not self.prompts.any_open() and self.app.screen is self:
            self.set_focus(self.table)

    def prompt_submitted(self, prompt: Prompt, value: str) -> None:
        self.prompts.submitted(prompt, value)

    def prompt_cancelled(self, prompt: Prompt) -> None:
        self.prompts.cancelled(prompt)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        prompt = self.query_one("#filter", Prompt)
        # A value the letters typed after it have already changed is not shown: only
        # the filter as it now stands is applied (a paged view reads it once).
        if prompt.is_open and event.value == prompt.value:
            self.prompts.set_filter(event.value)

    # -- marks, sorting, columns, describe, copy ---------------------------------------

    def action_mark(self) -> None:
        marks.toggle_mark(self)

    def action_mark_range(self) -> None:
        marks.mark_range(self)

    def action_sort_by(self, column_key: str) -> None:
        columns.sort_by(self, column_key)

    def action_sort(self) -> None:
        self.state.next_sort()
        self.resort()

    def action_sort_reverse(self) -> None:
        self.state.reverse_sort()
        self.resort()

    def resort(self) -> None:
        columns.resort(self)

    def action_wide(self) -> None:
        columns.toggle_wide(self)

    def action_columns(self) -> None:
        columns.choose_columns(self)

    def action_describe(self) -> None:
        if self.loader.when_rows_are_current(self.action_describe):
            describe.describe_current(self)

    def action_copy(self) -> None:
        if self.loader.when_rows_are_current(self.action_copy):
            describe.copy_current(self)

    # -- actions -------------------------------------------------------------------------

    def action_run(self, action_id: str) -> None:
        action = self._action(action_id)
        if action is None:
            return
        if isinstance(action, ViewAction):
            self.runner.run_view_action(action)
            return
        if not self.loader.when_rows_are_current(partial(self.action_run, action_id)):
            return
        self.runner.run_row_action(self.state.spec, action, self._targets(action))

    def _targets(self, action: RowAction[Any]) -> list[object]:
        """The marked rows for an action that takes marks, else the highlighted row."""
        source = self.table.source
        if action.bulk and self.state.marks and isinstance(source, ListSource):
            return [row.item for row in source.all_rows if row.key in self.state.marks]
        item = self.current_item()
        return [] if item is None else [item]

