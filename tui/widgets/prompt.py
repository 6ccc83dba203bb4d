"""The one-line prompts at the bottom: ``:`` to switch view, ``/`` to filter.

A prompt closes when it loses the focus, so Tab or a click can never leave it stranded
on screen; Esc closes it too. The ``:`` prompt completes with Tab (the longest common
prefix, then each candidate in turn), and walks its history with Up and Down.

Enter and Esc are answered by the screen at once (it moves the focus); the app hands
the next typed key over only after that (see :mod:`tui.typeahead`), so `/web` Enter
Enter keeps the filter, then opens the row.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import ClassVar, Protocol, runtime_checkable

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


@runtime_checkable
class PromptOwner(Protocol):
    """What answers a prompt's Enter and Esc, at once (see the module's docstring)."""

    def prompt_submitted(self, prompt: Prompt, value: str) -> None: ...

    def prompt_cancelled(self, prompt: Prompt) -> None: ...


class Prompt(Input):
    DEFAULT_CSS = """
    Prompt {
        dock: bottom;
        display: none;
        height: 1;
        margin-bottom: 1;
        background: $boost;
    }
    Prompt.-open { display: block; }
    """

    class Closed(Message):
        def __init__(self, prompt: Prompt) -> None:
            super().__init__()
            self.prompt = prompt

    def open(self, value: str = "") -> None:
        self.value = value
        self.cursor_position = len(value)
        self.add_class("-open")
        # Focus now, not after the queued keys: `:fip` typed fast must land here.
        self.screen.set_focus(self)

    def close(self) -> None:
        if self.has_class("-open"):
            self.remove_class("-open")
            self.post_message(self.Closed(self))

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self.close()

    async def _on_key(self, event: events.Key) -> None:
        owner = self.screen
        if event.key in ("enter", "escape") and isinstance(owner, PromptOwner):
            event.stop()
            event.prevent_default()
            if event.key == "enter":
                owner.prompt_submitted(self, self.value)
            else:
                owner.prompt_cancelled(self)


class CommandPrompt(Prompt):
    """``:`` + a view's name: Tab completes, Up/Down walk the history."""

    DEFAULT_CSS = """
    CommandPrompt { border-left: outer $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "history(-1)", "Older", show=False),
        Binding("down", "history(1)", "Newer", show=False),
    ]

    def __init__(
        self,
        complete: Callable[[str], list[str]],
        history: list[str] | None = None,
        *,
        id: str | None = None,
        placeholder: str = "",
    ) -> None:
        super().__init__(id=id, placeholder=placeholder, compact=True)
        self._complete = complete
        self.history = list(history or [])
        self._history_at: int | None = None
        self._cycle: list[str] = []
        self._cycle_at = 0

    def open(self, value: str = "") -> None:
        self._history_at = None
        self._cycle = []
        super().open(value)

    def action_complete(self) -> None:
        typed = self.value.strip()
        if self._cycle and typed in self._cycle:
            # Tab again: the next candidate.
            self._cycle_at = (self._cycle.index(typed) + 1) % len(self._cycle)
            self._set(self._cycle[self._cycle_at])
            return
        candidates = self._complete(typed)
        if not candidates:
            return
        common = os.path.commonprefix(candidates)
        if len(candidates) == 1 or len(common) <= len(typed):
            self._cycle = candidates if len(candidates) > 1 else []
            self._set(candidates[0])
        else:
            self._set(common)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._history_at is None:
            self._history_at = len(self.history)
        self._history_at = max(0, min(len(self.history), self._history_at + step))
        self._set(self.history[self._history_at] if self._history_at < len(self.history) else "")

    def _set(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)

    def candidates(self) -> list[str]:
        return self._complete(self.value.strip())
