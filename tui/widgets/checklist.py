"""A dialog to tick any number of names, some ticked already: an instance's security
groups among its project's, or the instances to add to a group.

Space ticks or unticks the highlighted name, Enter applies what is ticked, Esc leaves
everything as it was. The dialog answers the ticked values, in the list's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, SelectionList, Static

from tui.views.base import Choice
from tui.widgets.dialogs import Dialog


class Checklist(SelectionList[str]):
    """Ticks as each key arrives. SelectionList ticks through a message, which keys
    typed right behind the space (a move, an Enter) would overtake; and its Enter would
    tick, where here it applies."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "tick", "Tick", show=False),
        Binding("enter", "apply", "Apply", show=False),
    ]

    def action_tick(self) -> None:
        if self.highlighted is not None:
            self.toggle(self.get_option_at_index(self.highlighted))

    def action_apply(self) -> None:
        screen = self.screen
        if isinstance(screen, ChecklistDialog):
            screen.action_apply()


class ChecklistDialog(Dialog):
    DEFAULT_CSS = """
    ChecklistDialog #checklist { height: auto; max-height: 14; border: none;
                                 background: $surface; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: Sequence[tuple[Choice, bool]], verb: str) -> None:
        super().__init__()
        self.title_text = title
        self.choices = list(choices)
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog checklist"):
            yield Label(self.title_text, classes="dialog-title")
            yield Checklist(
                *[(choice.label, choice.value, ticked) for choice, ticked in self.choices],
                id="checklist", compact=True,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Static("space tick · Enter apply", classes="dialog-hint")
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(self.verb, variant="primary", id="apply", compact=True)

    def on_mount(self) -> None:
        self.query_one("#checklist").focus()

    @property
    def ticked(self) -> list[str]:
        chosen = set(self.query_one("#checklist", SelectionList).selected)
        return [choice.value for choice, _ in self.choices if choice.value in chosen]

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        if self.app.screen is not self:
            return
        if self.focused is self.query_one("#cancel", Button):
            self.action_cancel()
        else:
            self.dismiss(self.ticked)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()
