"""What the workers of the main screen's actions bring back (a dialog's call, a picker's
choices, a screen to open, a resource described, a context opened): typed messages,
each handled on the main screen's turn, in order with everything else it is told, and
never in the middle of another handler.

Each message carries what was asked with what came of it, and knows where on the screen
it goes (:meth:`ActionAnswer.deliver`), as the loader's answers do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from tui.screens.frame import MainFrame


class ActionAnswer(Message):
    """The result, or the refusal, of a worker an action started on the main screen."""

    def deliver(self, screen: MainFrame) -> None:
        raise NotImplementedError
