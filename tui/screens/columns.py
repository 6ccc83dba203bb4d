"""Which columns a view shows, and sorting by one.

`C` ticks the columns a view shows, kept per view between runs (`w` shows them all
anyway). Shift and a letter of a column's label sorts by it, as k9s does (`N` for Name):
each column gets the first letter of its label that no other key of the view holds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tui.keys import KeySpec
from tui.screens.state import matcher
from tui.views.base import Choice, ViewSpec
from tui.widgets.virtual_table import ListSource, VirtualTable

if TYPE_CHECKING:
    from tui.screens.frame import MainFrame

# Keys the table binds itself: no column takes one for sorting.
TABLE_BOUND = frozenset(
    key.strip()
    for binding in VirtualTable.BINDINGS
    if not isinstance(binding, tuple)
    for key in binding.key.split(",")
)


def sort_id(column_key: str) -> str:
    return f"sort.{column_key}"


def sort_keys(spec: ViewSpec[Any], taken: Iterable[str]) -> list[KeySpec]:
    """One shifted letter per column (``sort.<column>``), skipping keys already bound."""
    used = set(taken) | TABLE_BOUND
    specs: list[KeySpec] = []
    for column in spec.columns:
        letter = next(
            (c.upper() for c in column.label if c.isalpha() and c.upper() not in used), None
        )
        if letter is None:
            continue
        used.add(letter)
        specs.append(
            KeySpec(sort_id(column.key), letter, f"sort_by('{column.key}')",
                    f"Sort by {column.label}")
        )
    return specs


def hidden_of(screen: MainFrame, spec: ViewSpec[Any]) -> frozenset[int]:
    """The indexes of the columns the admin chose not to see in ``spec``'s view."""
    keys = set(screen.hidden_columns.get(spec.name, ()))
    return frozenset(i for i, column in enumerate(spec.columns) if column.key in keys)


def choose_columns(screen: MainFrame) -> None:
    """`C`: tick the columns to show; at least the first stays."""
    from tui.widgets.checklist import ChecklistDialog

    spec = screen.state.spec
    hidden = hidden_of(screen, spec)
    choices = [
        (Choice(column.label or column.key, column.key), index not in hidden)
        for index, column in enumerate(spec.columns)
    ]

    def chosen(value: object) -> None:
        if not isinstance(value, list) or screen.state.spec is not spec:
            return
        shown = set(value) or {spec.columns[0].key}
        screen.hidden_columns[spec.name] = [
            c.key for c in spec.columns if c.key not in shown
        ]
        if screen.context.memory is not None:
            screen.context.memory.keep_hidden_columns(screen.hidden_columns)
        screen.table.set_hidden(hidden_of(screen, spec))

    screen.app.push_screen(
        ChecklistDialog(f"Columns of {spec.title}", choices, "Show"), chosen
    )


def apply_wide(screen: MainFrame) -> None:
    """Show the view on screen with every column, or with those that fit."""
    wide = screen.state.spec.name in screen.wide_views
    screen.table.hidden = hidden_of(screen, screen.state.spec)
    screen.table.set_wide(wide)
    screen.query_one("#body").set_class(wide, "-all-columns")


def toggle_wide(screen: MainFrame) -> None:
    """`w`: every column of this view at full width, or back; kept between runs."""
    name = screen.state.spec.name
    screen.wide_views ^= {name}
    if screen.context.memory is not None:
        screen.context.memory.keep_wide(screen.wide_views)
    apply_wide(screen)
    screen.notify("All columns" if name in screen.wide_views else "Columns that fit",
                  timeout=2)


def sort_by(screen: MainFrame, column_key: str) -> None:
    """Shift+a column's letter: sort by it; again, the other way (as k9s does)."""
    state = screen.state
    keys = [column.key for column in state.spec.columns]
    if column_key not in keys:
        return  # a sort of another view's column
    column = keys.index(column_key)
    if state.sort_column == column:
        state.sort_descending = not state.sort_descending
    else:
        state.sort_column, state.sort_descending = column, False
    resort(screen)


def resort(screen: MainFrame) -> None:
    """Show the rows in the view's order now: sorted here, or read again when the
    database pages them (and sorts them only by address)."""
    state, table = screen.state, screen.table
    if state.spec.paged and state.sort_column not in (None, 0):
        state.sort_column = 0
        screen.notify(f"{state.spec.title} sort by address only", severity="warning",
                      timeout=3)
    table.sort_column = state.sort_column
    table.sort_descending = state.sort_descending
    source = table.source
    if isinstance(source, ListSource) and not state.spec.paged:
        source.apply(matcher(state.search), state.sort_column, state.sort_descending)
        screen.loader.show_source(source, state.cursor_key, 0)
    else:
        screen.loader.new_rows()
        screen.loader.reload()
    screen.show_crumbs()
