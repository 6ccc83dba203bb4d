"""Marks on rows, for the actions that take them: space marks one row (and moves down),
a range mark as k9s's ctrl+space every row from the last one marked to the cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.widgets.virtual_table import ListSource

if TYPE_CHECKING:
    from tui.screens.frame import MainFrame


def toggle_mark(screen: MainFrame) -> None:
    table = screen.table
    row = table.current_row
    if row is None:
        return
    screen.state.marks ^= {row.key}
    table.marked = screen.state.marks
    table.action_cursor_down()
    table.refresh()
    screen.show_crumbs()


def mark_range(screen: MainFrame) -> None:
    table = screen.table
    source = table.source
    row = table.current_row
    if row is None or not isinstance(source, ListSource):
        return
    marks = screen.state.marks
    keys = [r.key for r in source.rows]
    # The nearest marked row above the cursor, else below; none: mark just this row.
    cursor = table.cursor
    above = [i for i in range(cursor) if keys[i] in marks]
    below = [i for i in range(cursor + 1, len(keys)) if keys[i] in marks]
    anchor = above[-1] if above else below[0] if below else cursor
    low, high = sorted((anchor, cursor))
    marks.update(keys[low : high + 1])
    table.marked = marks
    table.refresh()
    screen.show_crumbs()
