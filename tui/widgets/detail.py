"""The text of the detail pane, which follows the table's cursor.

A Static's ``update`` lays the whole screen out again, and the pane's old workaround
for a scroll bar that comes and goes laid it out a second time a frame later: for each
cursor move, two frames and most of the move's time. A row's detail nearly always
takes as many lines as the last row's, so this widget then only repaints itself in
place; the screen is laid out only when the height changes.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class DetailText(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Content | None = None

    def show(self, content: Content) -> None:
        shown = self._shown
        if shown is not None and shown.is_same(content):
            return  # a refresh that changed nothing about this row draws nothing
        self._shown = content
        width = self.size.width
        rules = self.styles.get_rules()
        if shown is not None and width and (
            content.get_height(rules, width) == shown.get_height(rules, width)
        ):
            self.update(content, layout=False)
            return
        self.update(content)
        # The pane's scroll bar comes and goes with the text's height, and Textual can
        # keep the text's old height when it does: measure it again once laid out.
        self.call_after_refresh(self.refresh, layout=True)

    def clear(self) -> None:
        self.show(Content(""))
