"""Which columns a view shows, and sorting by one.

`C` ticks the columns a view shows, kept per view between runs (`w` shows them all
anyway). Shift and a letter of a column's label sorts by it, as k9s does (`N` for Name):
each column gets the first letter of its label that no other key of the view holds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tui.keys import KeySpec
from tui.views.base import Choice, ViewSpec
from tui.widgets.virtual_table import VirtualTable

if TYPE_CHECKING:
    from tui.screens.main import MainScreen

# Keys the table binds itself: no column takes one for sorting.
TABLE_BOUND = frozenset(
    key.strip()
    for binding in VirtualTable.BINDINGS
    if not isinstance(binding, tuple)
    for key in binding.key.split(",")
)


def sort_keys(spec: ViewSpec[Any], taken: Iterable[str]) -> list[KeySpec]:
    """One shifted letter per column (``sort.<column>``), skipping keys already bound."""
    used = set(taken) | TABLE_BOUND
    specs: list[KeySpec] = []
    for index, column in enumerate(spec.columns):
        letter = next(
            (c.upper() for c in column.label if c.isalpha() and c.upper() not in used), None
        )
        if letter is None:
            continue
        used.add(letter)
        specs.append(
            KeySpec(f"sort.{column.key}", letter, f"sort_by({index})",
                    f"Sort by {column.label}")
        )
    return specs


def hidden_of(screen: MainScreen, spec: ViewSpec[Any]) -> frozenset[int]:
    """The indexes of the columns the admin chose not to see in ``spec``'s view."""
    keys = set(screen.hidden_columns.get(spec.name, ()))
    return frozenset(i for i, column in enumerate(spec.columns) if column.key in keys)


def choose_columns(screen: MainScreen) -> None:
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
