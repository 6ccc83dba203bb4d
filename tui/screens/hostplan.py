"""Host plan and apply from the console: what apply would change on this host, then
apply it with a progress indicator, in a worker so the screen never freezes.

The host layer acts on the machine the console runs on (or ``settings.netns``), so
plan and apply are offered for this host's row only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Label, LoadingIndicator, Static

from core.errors import NetconError


class PlanScreen(ModalScreen[None]):
    """Shows a plan; with ``can_apply`` it offers to apply it, naming host and count."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("left,right,tab,shift+tab", "switch", "Switch button", show=False),
    ]

    def __init__(self, host: str, plan: Any, can_apply: bool) -> None:
        super().__init__(classes="dialog-screen")
        self.host = host
        self.plan = plan
        self.can_apply = can_apply and bool(plan.operations) and not plan.problems
        self.applying = False

    def compose(self) -> ComposeResult:
        operations = self.plan.describe()
        with Vertical(classes="dialog plan"):
            yield Label(
                f"Plan for {self.host}: {len(operations)} operation(s)", classes="dialog-title"
            )
            with VerticalScroll(id="plan-operations"):
                for problem in self.plan.problems:
                    yield Static(f"[$error]✗ {escape(problem)}[/]")
                lines = "\n".join(f"  {escape(line)}" for line in operations)
                yield Static(lines or "  nothing to change: the host matches the database")
            yield LoadingIndicator(id="plan-progress")
            yield Static("", id="plan-status", classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", compact=True)
                if self.can_apply:
                    yield Button(
                        f"Apply {len(operations)} on {self.host}", variant="warning",
                        id="apply", compact=True,
                    )

    def on_mount(self) -> None:
        self.query_one("#plan-progress").display = False
        self.query_one("#close", Button).focus()

    def action_switch(self) -> None:
        buttons = list(self.query(Button))
        if len(buttons) > 1:
            current = buttons.index(self.focused) if self.focused in buttons else -1
            buttons[(current + 1) % len(buttons)].focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        if not self.applying:
            self.dismiss(None)

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.applying = True
        self.query_one("#apply", Button).disabled = True
        self.query_one("#plan-progress").display = True
        count = len(self.plan.operations)
        self.query_one("#plan-status", Static).update(f"applying {count} operation(s)…")
        self._run_apply()

    @work(thread=True, exit_on_error=False)
    def _run_apply(self) -> None:
        app: Any = self.app
        service = app.service
        try:
            done = service.host_apply()
        except NetconError as exc:
            self.app.call_from_thread(self._finished, f"[$error]apply refused: "
                                                      f"{escape(exc.message)}[/]")
            return
        except Exception as exc:  # the console stays up whatever the host does
            self.app.call_from_thread(
                self._finished, f"[$error]apply failed: {escape(type(exc).__name__)}: "
                                f"{escape(str(exc))}[/]"
            )
            return
        self.app.call_from_thread(
            self._finished, f"applied {len(done.operations)} operation(s) on {self.host}"
        )

    def _finished(self, message: str) -> None:
        self.applying = False
        self.query_one("#plan-progress").display = False
        self.query_one("#plan-status", Static).update(message)
        self.query_one("#close", Button).focus()
        self.app.notify(message.split("]", 1)[-1].removesuffix("[/]"), timeout=6)
