"""Where the admin is in the console, and how a filter tests a row."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from tui.views.base import Scope, Search, ViewSpec

Matcher = Callable[[tuple[str, ...]], bool]


@dataclass
class ViewState:
    """Where the admin is: which view, narrowed to what, filtered, sorted, marked."""

    spec: ViewSpec[Any]
    scope: Scope = field(default_factory=dict)
    crumb: str = ""
    typed: str = ""  # the filter as typed
    sort_column: int | None = None
    sort_descending: bool = False
    cursor_key: Hashable | None = None
    cursor_index: int = 0
    marks: set[Hashable] = field(default_factory=set)

    @property
    def search(self) -> Search:
        return Search.parse(self.typed)

    def next_sort(self) -> None:
        """`s`: the first column ascending, then descending, then the next column."""
        if self.spec.paged:
            # Paged rows come in address order from the database; flip it instead.
            self.sort_column = 0
            self.sort_descending = not self.sort_descending
        elif self.sort_column is None:
            self.sort_column, self.sort_descending = 0, False
        elif not self.sort_descending:
            self.sort_descending = True
        else:
            self.sort_column = (self.sort_column + 1) % len(self.spec.columns)
            self.sort_descending = False

    def reverse_sort(self) -> None:
        """`S`: the other way round (the first column if none was sorted)."""
        if self.sort_column is None:
            self.sort_column = 0
        self.sort_descending = not self.sort_descending


def matcher(search: Search) -> Matcher | None:
    """A test of a row's cells for a filter: substring or regex, maybe negated."""
    if not search:
        return None
    if search.regex:
        pattern = re.compile(search.text, re.IGNORECASE)
        hit = lambda cells: any(pattern.search(cell) for cell in cells)  # noqa: E731
    else:
        needle = search.text.lower()
        hit = lambda cells: any(needle in cell.lower() for cell in cells)  # noqa: E731
    return (lambda cells: not hit(cells)) if search.negate else hit
