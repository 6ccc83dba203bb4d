"""The footer: the keys of this view, the most used first, as many as fit whole.

Textual's Footer cuts the last key at 80 columns; this one never draws part of a key
or a word. When keys are left out it says so with ``? more``, which lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

MORE = ("?", "more")


def fit_keys(keys: Sequence[tuple[str, str]], width: int) -> list[tuple[str, str]]:
    """The keys, in order, that fit in ``width`` cells, with `? more` when some do not."""

    def size(items: Sequence[tuple[str, str]]) -> int:
        return sum(len(k) + 1 + len(label) for k, label in items) + 2 * max(0, len(items) - 1)

    if size(keys) <= width:
        return list(keys)
    shown: list[tuple[str, str]] = []
    for entry in keys:
        if entry[0] == MORE[0]:
            continue
        if size([*shown, entry, MORE]) > width:
            break
        shown.append(entry)
    return [*shown, MORE]


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
        text-wrap: nowrap;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keys: list[tuple[str, str]] = []
        self._drawn = Content("")

    def show_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        self.keys = list(keys)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = max(0, self.size.width - 2) or 78
        parts: list[str | tuple[str, str]] = []
        for number, (key, label) in enumerate(fit_keys(self.keys, width)):
            if number:
                parts.append("  ")
            parts += [(key, "bold $accent"), " ", label]
        content = Content.assemble(*parts)
        if not content.is_same(self._drawn):
            # One line high: redrawn in place, without laying the screen out again.
            self.update(content, layout=False)
            self._drawn = content
