"""Sorting by a column with shift and a letter of its label, as k9s does (`N` for Name):
each column gets the first letter of its label that no other key of the view holds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tui.keys import KeySpec
from tui.views.base import ViewSpec
from tui.widgets.virtual_table import VirtualTable

# Keys the table binds itself: a view's action on one of them must come first.
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
