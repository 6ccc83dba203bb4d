"""The `?` overlay: every key that works here, as the admin has bound it, with the
binding id that `[keys]` in netcon.toml rebinds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static


@dataclass(frozen=True)
class HelpEntry:
    key: str
    label: str
    binding_id: str = ""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 76; max-width: 100%; height: 22; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    HelpScreen .help-title { text-style: bold; color: $accent; }
    HelpScreen #help-keys { height: 1fr; }
    HelpScreen .help-heading { margin-top: 1; }
    HelpScreen .dialog-hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[HelpEntry]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys", classes="help-title")
            with VerticalScroll(id="help-keys", can_focus=True):
                for heading, entries in self.sections:
                    yield Static(Content.styled(heading, "bold"), classes="help-heading")
                    yield Static(self._lines(entries))
            yield Static(
                Content('Rebind a key in netcon.toml: [keys] "binding.id" = "key" · Esc close'),
                classes="dialog-hint",
            )

    @staticmethod
    def _lines(entries: Sequence[HelpEntry]) -> Content:
        key_width = max((len(e.key) for e in entries), default=0)
        label_width = max((len(e.label) for e in entries), default=0)
        parts: list[str | tuple[str, str]] = []
        for number, entry in enumerate(entries):
            if number:
                parts.append("\n")
            parts += [
                "  ", (entry.key.ljust(key_width), "$accent"), "  ",
                entry.label.ljust(label_width),
            ]
            if entry.binding_id:
                parts += ["  ", (entry.binding_id, "$text-muted")]
        return Content.assemble(*parts)

    def action_close(self) -> None:
        self.dismiss(None)
