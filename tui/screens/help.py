"""The `?` overlay: every key that works right now, read from the live bindings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-keys", can_focus=True):
                for heading, keys in self.sections:
                    yield Static(f"[b]{escape(heading)}[/b]", classes="help-heading")
                    width = max((len(k) for k, _ in keys), default=0)
                    lines = "\n".join(
                        f"  [$accent]{escape(k.ljust(width))}[/]  {escape(d)}" for k, d in keys
                    )
                    yield Static(lines, classes="help-keys")
            yield Static("Esc close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
