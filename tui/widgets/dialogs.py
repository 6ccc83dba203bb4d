"""Modal dialogs: a form that keeps what was typed, a confirmation that names its
target, a filterable picker, and read-only text to read or copy.

Every dialog puts its buttons in one order, Cancel (or Close) first and the action
last, and answers Enter and Esc alike. A form or a confirmation that runs a service
call stays open while the call runs, showing how long it has been working; a form
the service refuses shows the refusal under the field it names, with everything typed
still there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, LoadingIndicator, OptionList, Select, Static
from textual.widgets.option_list import Option

from core.errors import NetconError
from tui.views.base import Choice, Confirm, Field, Form, Values

if TYPE_CHECKING:
    from tui.calls import Failure

def problem_of(field: Field, typed: str) -> str | None:
    """Why ``typed`` is not acceptable for ``field``, in the core's words; None if it is."""
    if not typed.strip():
        return None if field.optional else "required"
    try:
        field.check(typed.strip())
    except NetconError as exc:
        return str(getattr(exc, "rule", exc.message))
    return None


class Working(Horizontal):
    """A call in progress: a spinner and the seconds it has taken so far."""

    DEFAULT_CSS = """
    Working { height: 1; display: none; }
    Working.-on { display: block; }
    Working LoadingIndicator { width: 4; height: 1; min-height: 1; background: transparent; }
    Working Static { width: 1fr; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._started = 0.0
        self._timer: Timer | None = None
        self._what = ""

    def compose(self) -> ComposeResult:
        yield LoadingIndicator()
        yield Static()

    def start(self, what: str) -> None:
        self._what = what
        self._started = time.monotonic()
        self.add_class("-on")
        self._tick()
        self._timer = self.set_interval(0.1, self._tick)

    def stop(self) -> None:
        self.remove_class("-on")
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        seconds = time.monotonic() - self._started
        self.query_one(Static).update(f"{self._what}… {seconds:.1f} s")


class Dialog(ModalScreen[object]):
    """What every dialog shares: its frame, its title and the button order."""

    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog > .dialog {
        width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    Dialog .dialog-title { width: 1fr; text-style: bold; color: $accent; margin-bottom: 1; }
    Dialog .dialog-note, Dialog .dialog-hint { color: $text-muted; }
    Dialog .dialog-error { color: $error; display: none; }
    Dialog .dialog-error.-shown { display: block; }
    Dialog .dialog-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    Dialog .dialog-buttons Button { margin-left: 2; }
    Dialog .dialog-buttons .dialog-hint { width: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    busy = False

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)


class FormDialog(Dialog):
    """A form. With ``submit`` it stays open while ``submit(self, values)`` runs the
    call (see :meth:`working`, :meth:`refused`); without, it returns the values."""

    DEFAULT_CSS = """
    FormDialog .form-fields { height: auto; max-height: 16; }
    FormDialog .form-row { height: 1; }
    /* A cell between the longest label and its field, so they never run together. */
    FormDialog .form-label { width: 19; padding-right: 1; color: $foreground; }
    FormDialog .form-row Input { width: 1fr; background: $boost; }
    FormDialog .form-row Select { width: 1fr; }
    FormDialog .form-row Input.-invalid { background: $error 20%; }
    FormDialog .form-error { display: none; color: $error; padding-left: 19; }
    FormDialog .form-error.-shown { display: block; }
    """

    def __init__(
        self, form: Form, submit: Callable[[FormDialog, Values], object] | None = None
    ) -> None:
        super().__init__()
        self.form = form
        self.fields = list(form.fields)
        self.submit = submit

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label(self.form.title, classes="dialog-title")
            if self.form.note:
                yield Static(self.form.note, classes="dialog-note")
            fields = VerticalScroll(classes="form-fields")
            fields.can_focus = False  # focus goes to a field, not its container
            with fields:
                for field in self.fields:
                    with Horizontal(classes="form-row"):
                        yield Label(field.label, classes="form-label")
                        yield self._input(field)
                    yield Static("", id=f"error-{field.name}", classes="form-error")
            yield Static("", id="form-refusal", classes="dialog-error")
            yield Working()
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(self.form.submit, variant="primary", id="submit", compact=True)

    def _input(self, field: Field) -> Widget:
        if field.choices:
            options = [(choice, choice) for choice in field.choices]
            prompt = field.grey or "choose"
            select: Select[str] = Select(
                options,
                prompt=prompt,
                allow_blank=field.optional or not field.value,
                value=field.value if field.value in field.choices else Select.NULL,
                id=f"field-{field.name}",
                compact=True,
            )
            return select
        return Input(
            value=field.value, placeholder=field.grey, id=f"field-{field.name}",
            compact=True,
        )

    def on_mount(self) -> None:
        # The first field still to fill in, not one the dialog filled already; when every
        # required field is filled, the button, so that Enter submits.
        required = [f for f in self.fields if not f.optional]
        empty = [f for f in (required or self.fields) if not self.typed(f)]
        if empty:
            self.query_one(f"#field-{empty[0].name}").focus()
        elif self.form.first:
            self.query_one(f"#field-{self.form.first}").focus()
        else:
            self.query_one("#submit", Button).focus()

    def typed(self, field: Field) -> str:
        widget = self.query_one(f"#field-{field.name}")
        if isinstance(widget, Select):
            value = widget.value
            return value if isinstance(value, str) else ""
        assert isinstance(widget, Input)
        return widget.value

    def _show(self, field: Field, problem: str | None) -> None:
        error = self.query_one(f"#error-{field.name}", Static)
        error.update(Content(f"↳ {problem}") if problem else "")
        error.set_class(bool(problem), "-shown")
        self.query_one(f"#field-{field.name}").set_class(bool(problem), "-invalid")

    @on(Input.Changed)
    def _check_one(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        for field in self.fields:
            if field.name == name:
                self._show(field, problem_of(field, event.value) if event.value else None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def _submit(self) -> None:
        if self.busy:
            return
        values: dict[str, object] = {}
        first_bad: Widget | None = None
        for field in self.fields:
            typed = self.typed(field)
            problem = problem_of(field, typed)
            self._show(field, problem)
            if problem:
                first_bad = first_bad or self.query_one(f"#field-{field.name}")
            elif typed.strip():
                values[field.name] = field.check(typed.strip())
        self._refusal(None)
        if first_bad is not None:
            first_bad.focus()
            return
        if self.submit is None:
            self.dismiss(Values(values))
        else:
            self.submit(self, Values(values))

    def working(self, what: str) -> None:
        """The call runs: keep everything, accept nothing more until it answers."""
        self.busy = True
        self.query_one("#submit", Button).disabled = True
        self.query_one(Working).start(what)

    def refused(self, failure: Failure) -> None:
        """The service said no: show why where it belongs, keep every field as typed."""
        self.busy = False
        self.query_one(Working).stop()
        self.query_one("#submit", Button).disabled = False
        for field in self.fields:
            if field.named(failure.field):
                rule = failure.message.removeprefix(f"{failure.field}: ")
                self._show(field, rule)
                self.query_one(f"#field-{field.name}").focus()
                return
        self._refusal(failure.message)

    def _refusal(self, message: str | None) -> None:
        line = self.query_one("#form-refusal", Static)
        line.update(Content(f"✗ {message}") if message else "")
        line.set_class(bool(message), "-shown")

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()


class ConfirmDialog(Dialog):
    """Asks before a destructive step. Cancel has the focus; `y` or a move to the
    button that names the target, then Enter, confirms; `n` and Esc cancel."""

    DEFAULT_CSS = """
    ConfirmDialog > .dialog { border: round $error; }
    ConfirmDialog #confirm-targets { height: auto; max-height: 10; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "confirm", "Confirm"),
        Binding("left,right,tab,shift+tab", "switch", "Switch button", show=False),
    ]

    def __init__(
        self,
        confirm: Confirm,
        run: Callable[[ConfirmDialog], object] | None = None,
        targets: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.confirm = confirm
        self.run = run
        self.targets = list(targets)

    @property
    def question(self) -> str:
        return self.confirm.question

    @property
    def target(self) -> str:
        return self.confirm.target

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Label("Confirm", classes="dialog-title")
            yield Static(Content(self.confirm.question))
            with VerticalScroll(id="confirm-targets"):
                names = self.targets or [self.confirm.target]
                yield Static(Content.assemble(*self._target_lines(names)))
            yield Static("", id="confirm-refusal", classes="dialog-error")
            yield Working()
            with Horizontal(classes="dialog-buttons"):
                yield Static("y yes · n no", classes="dialog-hint")
                yield Button("Cancel", id="cancel", compact=True)
                label = self.confirm.verb if self.targets else (
                    f"{self.confirm.verb} {self.confirm.target}"
                )
                yield Button(label, variant="error", id="confirm", compact=True)

    @staticmethod
    def _target_lines(names: Sequence[str]) -> list[str | tuple[str, str]]:
        parts: list[str | tuple[str, str]] = []
        for number, name in enumerate(names):
            parts += ["\n  " if number else "  ", (name, "bold")]
        return parts

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_switch(self) -> None:
        cancel = self.query_one("#cancel", Button)
        (self.query_one("#confirm", Button) if cancel.has_focus else cancel).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        if self.busy:
            return
        if self.run is None:
            self.dismiss(True)
        else:
            self.run(self)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    def working(self, what: str) -> None:
        self.busy = True
        for button in self.query(Button):
            button.disabled = True
        self.query_one(Working).start(what)

    def refused(self, failure: Failure) -> None:
        """Refused: say so here, leave only Close."""
        self.busy = False
        self.query_one(Working).stop()
        line = self.query_one("#confirm-refusal", Static)
        line.update(Content(f"✗ {failure.message}"))
        line.add_class("-shown")
        self.query_one("#confirm", Button).display = False
        cancel = self.query_one("#cancel", Button)
        cancel.label = "Close"
        cancel.disabled = False
        cancel.focus()


class PickDialog(Dialog):
    """Choose one of ``choices``: type to filter, arrows to move, Enter."""

    DEFAULT_CSS = """
    PickDialog #pick-options { height: auto; max-height: 12; border: none; background: $surface; }
    PickDialog #pick-filter { margin-bottom: 1; background: $boost; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    def __init__(self, title: str, choices: Sequence[Choice]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = list(choices)
        self.shown = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(placeholder="type to filter", id="pick-filter", compact=True)
            yield OptionList(*self._options(), id="pick-options")
            yield Static("Enter choose · Esc cancel", classes="dialog-hint")

    def _options(self) -> list[Option]:
        if not self.shown:
            return [Option("(nothing matches)", disabled=True)]
        return [Option(Content(choice.label)) for choice in self.shown]

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0 if self.shown else None
        self.query_one("#pick-filter", Input).focus()

    @on(Input.Changed, "#pick-filter")
    def _filter(self, event: Input.Changed) -> None:
        needle = event.value.strip().lower()
        self.shown = [c for c in self.choices if needle in c.label.lower()]
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
            self.dismiss(self.shown[highlighted].value)

    @on(OptionList.OptionSelected)
    def _choose(self, event: OptionList.OptionSelected) -> None:
        if self.shown:
            self.dismiss(self.shown[event.option_index].value)


class TextDialog(Dialog):
    """Read-only text (an audit event's before and after, an instance in full) that
    scrolls by keyboard."""

    DEFAULT_CSS = """
    TextDialog > .dialog { width: 90; height: 90%; }
    TextDialog #text-body { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "cancel", "Close")]

    def __init__(self, title: str, body: Content) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog text"):
            yield Label(Content(self.title_text), classes="dialog-title")
            with VerticalScroll(id="text-body", can_focus=True):
                yield Static(self.body)
            with Horizontal(classes="dialog-buttons"):
                yield Static("↑↓ PgUp PgDn scroll · Esc close", classes="dialog-hint")
                yield Button("Close", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#text-body").focus()

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)


class ClientConfigDialog(Dialog):
    """A VPN user's .ovpn file, read-only, to select or copy whole (``c``).

    The text holds the user's private key: it lives only in this widget and the
    clipboard the admin asks for, never in a log, a notification or a file.
    """

    DEFAULT_CSS = """
    ClientConfigDialog > .dialog { width: 76; height: 22; }
    ClientConfigDialog #client-config-text { height: 1fr; border: none; padding: 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("c", "copy_all", "Copy"),
    ]

    def __init__(self, project: str, user: str, text: str) -> None:
        super().__init__()
        self.project = project
        self.user = user
        self.text = text

    def compose(self) -> ComposeResult:
        from textual.widgets import TextArea

        with Vertical(classes="dialog client-config"):
            yield Label(
                Content.assemble("Client configuration of ", (self.user, "bold"), " in ",
                                 (self.project, "bold")),
                classes="dialog-title",
            )
            yield Static(
                "Holds the user's private key: hand it over privately.", classes="dialog-note"
            )
            yield TextArea(self.text, read_only=True, soft_wrap=False, id="client-config-text")
            with Horizontal(classes="dialog-buttons"):
                yield Static("c copy all · Esc close", classes="dialog-hint")
                yield Button("Close", id="close", compact=True)
                yield Button("Copy", variant="primary", id="copy", compact=True)

    def on_mount(self) -> None:
        self.query_one("#client-config-text").focus()

    @on(Button.Pressed, "#copy")
    def action_copy_all(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify(f"Configuration of {self.user} copied to the clipboard", timeout=4)

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)
