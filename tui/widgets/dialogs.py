"""Modal dialogs: a validated form, a confirmation that names its target, a filterable
picker and a read-only text to copy. Enter submits, Esc cancels, everywhere.

Fields are checked with the core's own validators (``core.validate``), so the console
refuses exactly what the service and the CLI refuse, with the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from core.errors import NetconError


@dataclass(frozen=True)
class Field:
    """One input of a form.

    ``check`` turns the text into the value handed to the service, raising the core's
    ``InvalidInput`` when it is wrong. An empty optional field yields no value at all,
    so the service applies its own default (shown as the placeholder).
    """

    name: str
    label: str
    check: Callable[[str], Any] = str
    value: str = ""
    placeholder: str = ""
    optional: bool = False
    suggestions: tuple[str, ...] = ()


def _problem(field: Field, text: str) -> str | None:
    if not text.strip():
        return None if field.optional else "required"
    try:
        field.check(text.strip())
    except NetconError as exc:
        return str(getattr(exc, "rule", exc.message))
    return None


class FormDialog(ModalScreen[dict[str, Any] | None]):
    """A form whose result is ``{field name: checked value}``, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        submit_label: str = "OK",
        note: str = "",
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, classes="dialog-screen")
        self.title_text = title
        self.fields = list(fields)
        self.submit_label = submit_label
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label(self.title_text, classes="dialog-title")
            if self.note:
                yield Static(self.note, classes="dialog-note")
            fields = VerticalScroll(classes="form-fields")
            fields.can_focus = False  # focus goes to the first field, not its container
            with fields:
                for field in self.fields:
                    with Horizontal(classes="form-row"):
                        yield Label(field.label, classes="form-label")
                        yield Input(
                            value=field.value,
                            placeholder=field.placeholder,
                            id=f"field-{field.name}",
                            compact=True,
                            suggester=SuggestFromList(field.suggestions, case_sensitive=False)
                            if field.suggestions
                            else None,
                        )
                    yield Static("", id=f"error-{field.name}", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.submit_label, variant="primary", id="submit", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _show(self, field: Field, problem: str | None) -> None:
        error = self.query_one(f"#error-{field.name}", Static)
        error.update(f"↳ {escape(problem)}" if problem else "")
        error.set_class(bool(problem), "-shown")
        self.query_one(f"#field-{field.name}", Input).set_class(bool(problem), "-invalid")

    @on(Input.Changed)
    def _check_one(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        for field in self.fields:
            if field.name == name:
                self._show(field, _problem(field, event.value) if event.value else None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def _submit(self) -> None:
        values: dict[str, Any] = {}
        first_bad: Input | None = None
        for field in self.fields:
            widget = self.query_one(f"#field-{field.name}", Input)
            problem = _problem(field, widget.value)
            self._show(field, problem)
            if problem:
                first_bad = first_bad or widget
            elif widget.value.strip():
                values[field.name] = field.check(widget.value.strip())
        if first_bad is not None:
            first_bad.focus()
            return
        self.dismiss(values)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """Asks before a destructive action. Cancel has the focus; confirming takes a
    deliberate move to the button that names the target, then Enter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("left,right,tab,shift+tab", "switch", "Switch button", show=False),
    ]

    def __init__(self, question: str, target: str, confirm_label: str) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.target = target
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Label("Confirm", classes="dialog-title")
            yield Static(Content.assemble(self.question, "\n\n  ", (self.target, "bold")))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(
                    f"{self.confirm_label} {self.target}", variant="error", id="confirm",
                    compact=True,
                )

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_switch(self) -> None:
        cancel = self.query_one("#cancel", Button)
        (self.query_one("#confirm", Button) if cancel.has_focus else cancel).focus()

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class PickDialog(ModalScreen[Any]):
    """Choose one of ``choices`` (label, value): type to filter, arrows to move, Enter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    def __init__(self, title: str, choices: Sequence[tuple[str, Any]], note: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.choices = list(choices)
        self.note = note
        self.shown: list[tuple[str, Any]] = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(self.title_text, classes="dialog-title")
            if self.note:
                yield Static(self.note, classes="dialog-note")
            yield Input(placeholder="type to filter", id="pick-filter", compact=True)
            yield OptionList(*self._options(), id="pick-options")
            yield Static("Enter choose · Esc cancel", classes="dialog-hint")

    def _options(self) -> list[Option]:
        if not self.shown:
            return [Option("(nothing matches)", disabled=True)]
        return [Option(escape(label)) for label, _ in self.shown]

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0 if self.shown else None
        self.query_one("#pick-filter", Input).focus()

    @on(Input.Changed, "#pick-filter")
    def _filter(self, event: Input.Changed) -> None:
        needle = event.value.strip().lower()
        self.shown = [c for c in self.choices if needle in c[0].lower()]
        options = self.query_one(OptionList)
        options.set_options(self._options())
        options.highlighted = 0 if self.shown else None

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if self.shown:
            current = options.highlighted or 0
            options.highlighted = max(0, min(len(self.shown) - 1, current + step))

    @on(Input.Submitted, "#pick-filter")
    def _choose_highlighted(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if self.shown and highlighted is not None:
            self.dismiss(self.shown[highlighted][1])

    @on(OptionList.OptionSelected)
    def _choose(self, event: OptionList.OptionSelected) -> None:
        if self.shown:
            self.dismiss(self.shown[event.option_index][1])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ClientConfigDialog(ModalScreen[None]):
    """A VPN user's .ovpn file, read-only, to select or copy whole (``c``).

    The text holds the user's private key: it lives only in this widget and the
    clipboard the admin asks for, never in a log, a notification or a file.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("c", "copy_all", "Copy"),
    ]

    def __init__(self, project: str, user: str, text: str) -> None:
        super().__init__(classes="dialog-screen")
        self.project = project
        self.user = user
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog client-config"):
            yield Label(
                Content.assemble("Client configuration of ", (self.user, "bold"), " in ",
                                 (self.project, "bold")),
                classes="dialog-title",
            )
            yield Static(
                "Holds the user's private key: hand it over privately.", classes="dialog-note"
            )
            yield TextArea(
                self.text, read_only=True, soft_wrap=False, id="client-config-text"
            )
            with Horizontal(classes="dialog-buttons"):
                yield Static("c copy all · Esc close", classes="dialog-hint")
                yield Button("Copy", variant="primary", id="copy", compact=True)
                yield Button("Close", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    @on(Button.Pressed, "#copy")
    def action_copy_all(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify(f"Configuration of {self.user} copied to the clipboard", timeout=4)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
