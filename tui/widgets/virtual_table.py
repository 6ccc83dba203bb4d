"""A table that draws only the rows on screen and asks for the ones it lacks.

Textual's DataTable keeps and measures every row, which takes seconds for the 65,534
addresses of a /16. This widget holds a :class:`TableSource` instead: either every row
of a small listing (:class:`ListSource`), or windows of a large one fetched from the
database as they scroll into view (:class:`PagedSource`). Columns are fitted to the
width (shrunk or dropped by priority), so there is never a sideways scroll bar; a
two-cell gutter shows marks and rows whose change waits for the host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class Column:
    """A column: its natural width, and how it gives way on a narrow terminal.

    Columns shrink (never below their label, nor ``min_width``) starting with the
    largest ``priority`` number, and when even that does not fit they are dropped in
    the same order, so the columns an admin reads first stay whole.
    """

    key: str
    label: str
    width: int
    numeric: bool = False
    priority: int = 0
    min_width: int = 0

    @property
    def narrowest(self) -> int:
        return min(self.width, max(len(self.label), self.min_width))


GUTTER = 2  # a mark ('*') and a pending host change ('~') before each row
EXTRA = 5  # columns of this priority or more go before any other column is narrowed
# Wide mode measures this many rows' cells at most: a view's width, not a scan of a /16.
FULL_WIDTH_ROWS = 2000


def fit_columns(columns: Sequence[Column], width: int) -> list[tuple[int, int]]:
    """Which columns to draw, at what width, within ``width`` cells: (index, width).

    First the extras (priority 5 or more) go, least important first; then columns
    narrow, least important first and never the first-rank ones (priority 0); only when
    that is not enough do more columns go.
    """
    kept = list(range(len(columns)))

    def natural() -> int:
        return sum(columns[i].width + 1 for i in kept)

    def narrowest() -> int:
        return sum((columns[i].narrowest if columns[i].priority else columns[i].width) + 1
                   for i in kept)

    def least_important() -> int:
        return max(kept, key=lambda i: (columns[i].priority, i))

    while natural() > width and columns[least_important()].priority >= EXTRA:
        kept.remove(least_important())
    while narrowest() > width and len(kept) > 1:
        kept.remove(least_important())
    widths = {i: columns[i].width for i in kept}
    excess = natural() - width
    for i in sorted(kept, key=lambda i: (-columns[i].priority, -i)):
        if excess <= 0 or not columns[i].priority:
            continue
        cut = min(excess, widths[i] - columns[i].narrowest)
        widths[i] -= cut
        excess -= cut
    return [(i, widths[i]) for i in kept]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a table: the resource's id, the text of each cell and the view it shows."""

    key: Hashable
    cells: tuple[str, ...]
    item: Any


def sort_key(text: str) -> tuple[Any, ...]:
    """Order numbers and addresses by value, everything else alphabetically."""
    if text.isdigit():
        return (0, int(text))
    head = text.split("/", 1)[0].split(":", 1)[0]
    try:
        return (1, int(ipaddress.IPv4Address(head)), text)
    except ValueError:
        return (2, text.lower())


class TableSource:
    """Where a table's rows come from."""

    total: int = 0

    def row(self, index: int) -> Row | None:
        """The row at ``index``, or None while it is not loaded yet."""
        raise NotImplementedError

    def index_of(self, key: Hashable) -> int | None:
        return None


Matcher = Callable[[tuple[str, ...]], bool]


class ListSource(TableSource):
    """Every row in memory; filtering and sorting happen here, without the database."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.all_rows = list(rows)
        self.rows = list(rows)
        self.total = len(self.rows)
        self._index: dict[Hashable, int] | None = None

    def row(self, index: int) -> Row | None:
        return self.rows[index] if 0 <= index < self.total else None

    def index_of(self, key: Hashable) -> int | None:
        if self._index is None:
            self._index = {row.key: i for i, row in enumerate(self.rows)}
        return self._index.get(key)

    def apply(self, match: Matcher | None, sort_column: int | None, descending: bool) -> None:
        rows = self.all_rows
        if match is not None:
            rows = [r for r in rows if match(r.cells)]
        if sort_column is not None:
            rows = sorted(rows, key=lambda r: sort_key(r.cells[sort_column]), reverse=descending)
        self.rows = list(rows)
        self.total = len(self.rows)
        self._index = None


KEPT_PAGES = 8


class PagedSource(TableSource):
    """A listing too large to hold: windows of ``page_size`` rows, fetched on demand.

    ``request`` is called with the offset of a window the table needs; the owner fetches
    it (in a worker) and hands it back with :meth:`put`. Only the ``keep`` windows used
    last are held (a screen needs two at most): paging through a million addresses costs
    the memory of a few windows, not of every window passed on the way; one scrolled
    back to is read again.
    """

    def __init__(
        self,
        total: int,
        page_size: int,
        request: Callable[[int], None],
        descending: bool = False,
        keep: int = KEPT_PAGES,
    ) -> None:
        self.total = total
        self.page_size = page_size
        self.descending = descending
        self.keep = max(2, keep)
        self._request = request
        self._pages: dict[int, list[Row]] = {}  # least recently used first
        self._asked: set[int] = set()

    def _page_of(self, index: int) -> int:
        position = self.total - 1 - index if self.descending else index
        return position // self.page_size

    def row(self, index: int) -> Row | None:
        if not 0 <= index < self.total:
            return None
        page_number = self._page_of(index)
        page = self._pages.get(page_number)
        if page is None:
            if page_number not in self._asked:
                self._asked.add(page_number)
                self._request(page_number * self.page_size)
            return None
        if next(reversed(self._pages)) != page_number:
            self._pages[page_number] = self._pages.pop(page_number)  # used last now
        position = self.total - 1 - index if self.descending else index
        within = position - page_number * self.page_size
        return page[within] if within < len(page) else None

    def put(self, offset: int, rows: Sequence[Row]) -> None:
        page_number = offset // self.page_size
        self._pages.pop(page_number, None)
        self._pages[page_number] = list(rows)
        self._asked.add(page_number)
        while len(self._pages) > self.keep:
            oldest = next(iter(self._pages))
            del self._pages[oldest]
            self._asked.discard(oldest)  # asked again if it scrolls back into view

    @property
    def held(self) -> int:
        """How many rows are in memory."""
        return sum(len(page) for page in self._pages.values())

    def index_of(self, key: Hashable) -> int | None:
        for page_number, page in self._pages.items():
            for within, row in enumerate(page):
                if row.key == key:
                    position = page_number * self.page_size + within
                    return self.total - 1 - position if self.descending else position
        return None


class VirtualTable(ScrollView, can_focus=True):
    """A keyboard-first table over a :class:`TableSource`; line 0 is the column header."""

    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        width: 1fr;
        background: $surface;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    VirtualTable:focus {
        background-tint: $foreground 3%;
    }
    VirtualTable > .virtual-table--header {
        text-style: bold;
        background: $panel;
        color: $accent;
    }
    VirtualTable > .virtual-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    VirtualTable > .virtual-table--odd {
        background: $surface-lighten-1;
    }
    VirtualTable > .virtual-table--marked {
        color: $accent;
        text-style: bold;
    }
    VirtualTable > .virtual-table--pending {
        color: $warning;
        text-style: bold;
    }
    VirtualTable > .virtual-table--loading {
        color: $text-muted;
        text-style: italic;
    }
    """

    # Letters are bound apart from the keys they double, so that a view can take one
    # for itself (`g` on an instance: its groups) and leave the others (see ``ceded``).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False),
        Binding("home", "first", "First row", show=False),
        Binding("end", "last", "Last row", show=False),
        Binding("left", "sideways(-8)", "Left", show=False),
        Binding("right", "sideways(8)", "Right", show=False),
        Binding("k", "letter('k', 'cursor_up')", "Up", show=False),
        Binding("j", "letter('j', 'cursor_down')", "Down", show=False),
        Binding("g", "letter('g', 'first')", "First row", show=False),
        Binding("G", "letter('G', 'last')", "Last row", show=False),
        Binding("h", "letter('h', 'sideways(-8)')", "Left", show=False),
        Binding("l", "letter('l', 'sideways(8)')", "Right", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--odd",
        "virtual-table--marked",
        "virtual-table--pending",
        "virtual-table--loading",
    }

    # Drawn by its watcher, which knows which rows it changed.
    cursor = reactive(0, repaint=False)

    class Highlighted(Message):
        def __init__(self, table: VirtualTable, index: int, row: Row | None) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.row = row

    class Selected(Message):
        def __init__(self, table: VirtualTable, index: int, row: Row) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.row = row

    class HeaderClicked(Message):
        def __init__(self, table: VirtualTable, column: int) -> None:
            super().__init__()
            self.table = table
            self.column = column

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.columns: list[Column] = []
        self._fitted: tuple[int, list[tuple[int, int]]] = (-1, [])
        self.source: TableSource = ListSource([])
        self.sort_column: int | None = None
        self.sort_descending = False
        self.empty_text = "nothing here"
        self.marked: set[Hashable] = set()
        self.pending: Callable[[Row], bool] = lambda row: False
        # Wide: every column at its full width, scrolling sideways when they overflow.
        self.wide = False
        # Columns the admin chose not to see (by index); wide shows them all the same.
        self.hidden: frozenset[int] = frozenset()
        # Letter keys the view on screen binds itself: they pass the table by.
        self.ceded: frozenset[str] = frozenset()
        self._drawn: tuple[object, ...] = ()
        # Told of the cursor row as it changes, before the frame that draws the move:
        # what follows the cursor (the detail pane) is drawn in that same frame, not
        # one frame later as a Highlighted message's handler would be.
        self.follow: Callable[[int, Row | None], None] = lambda index, row: None

    # -- data ---------------------------------------------------------------------------

    def set_source(
        self,
        columns: Sequence[Column],
        source: TableSource,
        keep_key: Hashable | None = None,
        keep_index: int | None = None,
    ) -> None:
        """Show ``source``; the cursor goes back to the row with ``keep_key`` if it is there."""
        # (A filter or a sort changes the rows of the source shown: never unchanged.)
        unchanged = (
            source is not self.source
            and isinstance(source, ListSource)
            and isinstance(self.source, ListSource)
            and list(columns) == self.columns
            and source.rows == self.source.rows
        )
        self.columns = list(columns)
        self.source = source
        self._fit()
        index = source.index_of(keep_key) if keep_key is not None else None
        if index is None:
            index = keep_index if keep_index is not None else 0
        old, top = self.cursor, self.scroll_offset.y
        # Set without the watcher: the rows are drawn here, and announced once.
        self.set_reactive(VirtualTable.cursor, max(0, min(index, source.total - 1)))
        self._keep_cursor_visible()
        drawn = self._drawn_as()
        if unchanged and drawn == self._drawn and self.scroll_offset.y == top:
            # A refresh that read the same rows: only a moved cursor is drawn again.
            if old != self.cursor:
                self.refresh_line(old + 1)
                self.refresh_line(self.cursor + 1)
        else:
            self.refresh()
        self._drawn = drawn
        self._announce()

    def _drawn_as(self) -> tuple[object, ...]:
        """What the rows look like besides their cells."""
        return (self.sort_column, self.sort_descending, frozenset(self.marked), self.empty_text)

    def _fit(self) -> None:
        # Narrow, columns always fit the width (see fit_columns), so the virtual width is
        # nominal: there is nothing to scroll sideways to. Wide, it is every column's.
        full = GUTTER + sum(width + 1 for width in self._full_widths()) if self.wide else 1
        self.virtual_size = Size(full, self.source.total + 1)
        self.styles.overflow_x = "auto" if self.wide else "hidden"
        self._fitted = (-1, [])

    def _full_widths(self) -> list[int]:
        """Each column's full width: its own, or its longest cell's among the rows in
        memory (the first FULL_WIDTH_ROWS of them), whichever is wider."""
        widths = [column.width for column in self.columns]
        if isinstance(self.source, ListSource):
            for row in self.source.all_rows[:FULL_WIDTH_ROWS]:
                for i, cell in enumerate(row.cells[: len(widths)]):
                    if len(cell) > widths[i]:
                        widths[i] = len(cell)
        return widths

    def set_hidden(self, hidden: frozenset[int]) -> None:
        self.hidden = hidden
        self._fitted = (-1, [])
        self.refresh()

    def set_wide(self, wide: bool) -> None:
        self.wide = wide
        self._fit()
        if not wide:
            self.scroll_to(x=0, animate=False, immediate=True)
        self.refresh()

    def _layout(self) -> list[tuple[int, int]]:
        """The columns for the width the table has now; refitted when it changes."""
        width = self.size.width
        if self._fitted[0] != width:
            if self.wide:
                fitted = list(enumerate(self._full_widths()))
            else:
                room = max(0, width - GUTTER - 1)  # one cell for the vertical scroll bar
                shown = [i for i in range(len(self.columns)) if i not in self.hidden]
                fitted = [
                    (shown[i], w)
                    for i, w in fit_columns([self.columns[i] for i in shown], room)
                ]
            self._fitted = (width, fitted)
        return self._fitted[1]

    @property
    def layout_columns(self) -> list[tuple[int, int]]:
        return self._layout()

    def on_resize(self) -> None:
        self._keep_cursor_visible()
        self.refresh()

    def rows_arrived(self) -> None:
        """A window came back from the database: redraw, and re-announce the cursor row."""
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        row = self.current_row
        self.follow(self.cursor, row)
        self.post_message(self.Highlighted(self, self.cursor, row))

    @property
    def current_row(self) -> Row | None:
        return self.source.row(self.cursor)

    # -- drawing -------------------------------------------------------------------------

    def _cells_segments(self, cells: Sequence[str], style: Style) -> list[Segment]:
        segments = []
        for index, width in self.layout_columns:
            column = self.columns[index]
            text = cells[index] if index < len(cells) else ""
            cell = text if len(text) <= width else text[: width - 1] + "…"
            cell = cell.rjust(width) if column.numeric else cell.ljust(width)
            segments.append(Segment(cell + " ", style))
        return segments

    def render_line(self, y: int) -> Strip:
        scroll_y = self.scroll_offset.y
        width = self.size.width
        base = self.rich_style
        if y == 0:
            labels = []
            for number, column in enumerate(self.columns):
                label = column.label
                if number == self.sort_column:
                    label += " ▼" if self.sort_descending else " ▲"
                labels.append(label)
            style = base + self.get_component_rich_style("virtual-table--header")
            segments = [Segment(" " * GUTTER, style), *self._cells_segments(labels, style)]
            return self._crop(Strip(segments), width, style)
        index = scroll_y + y - 1
        if index >= self.source.total:
            if self.source.total == 0 and y == 1:
                style = base + self.get_component_rich_style("virtual-table--loading")
                return Strip([Segment(f" {self.empty_text}", style)]).extend_cell_length(
                    width, style
                ).crop(0, width)
            return Strip.blank(width, base)
        row = self.source.row(index)
        if index == self.cursor:
            style = base + self.get_component_rich_style("virtual-table--cursor")
        elif index % 2:
            style = base + self.get_component_rich_style("virtual-table--odd")
        else:
            style = base
        if row is None:
            loading = base + self.get_component_rich_style("virtual-table--loading")
            return Strip([Segment("   loading…", loading)]).extend_cell_length(
                width, style
            ).crop(0, width)
        marked = row.key in self.marked
        if marked:
            style += self.get_component_rich_style("virtual-table--marked")
        pending = self.pending(row)
        pending_style = style + self.get_component_rich_style("virtual-table--pending")
        gutter = [
            Segment("*" if marked else " ", style),
            Segment("~" if pending else " ", pending_style if pending else style),
        ]
        segments = gutter + self._cells_segments(row.cells, style)
        return self._crop(Strip(segments), width, style)

    def _crop(self, strip: Strip, width: int, style: Style) -> Strip:
        left = self.scroll_offset.x if self.wide else 0
        return strip.extend_cell_length(left + width, style).crop(left, left + width)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "letter":
            return parameters[0] not in self.ceded
        return True

    async def action_letter(self, key: str, action: str) -> None:
        await self.run_action(action)

    def action_sideways(self, cells: int) -> None:
        if self.wide:
            self.scroll_to(x=max(0, self.scroll_x + cells), animate=False, immediate=True)

    # -- cursor --------------------------------------------------------------------------

    @property
    def _page_rows(self) -> int:
        return max(1, self.size.height - 1)

    def watch_cursor(self, old: int, new: int) -> None:
        top = self.scroll_offset.y
        self._keep_cursor_visible()
        if self.scroll_offset.y == top:
            # Only the rows the cursor left and reached look different: a cursor move
            # sends two lines to the terminal, not the whole table.
            self.refresh_line(old + 1)
            self.refresh_line(new + 1)
        else:
            self.refresh()
        if old != new:
            self._announce()

    def _keep_cursor_visible(self) -> None:
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + self._page_rows:
            self.scroll_to(y=self.cursor - self._page_rows + 1, animate=False, immediate=True)

    def move_cursor(self, index: int) -> None:
        if self.source.total:
            self.cursor = max(0, min(index, self.source.total - 1))

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self._page_rows)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self._page_rows)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.source.total - 1)

    def action_select(self) -> None:
        row = self.current_row
        if row is not None:
            self.post_message(self.Selected(self, self.cursor, row))

    def on_click(self, event: events.Click) -> None:
        scroll_y = self.scroll_offset.y
        if event.y == 0:
            x = event.x - GUTTER + (self.scroll_offset.x if self.wide else 0)
            for index, width in self.layout_columns:
                if 0 <= x < width + 1:
                    self.post_message(self.HeaderClicked(self, index))
                    return
                x -= width + 1
            return
        index = scroll_y + event.y - 1
        if index < self.source.total:
            if index == self.cursor and event.chain >= 2:
                self.action_select()
            self.move_cursor(index)
