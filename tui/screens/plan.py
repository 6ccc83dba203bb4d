"""This host's plan: what `host apply` would change, and applying it from the console.

The plan scrolls by keyboard. A plan with problems cannot be applied, and the screen
says why instead of only leaving the button out (unless each problem holds back one
network only: then the rest applies); read-only never offers to apply. Applying is
confirmed as everywhere else, `y` or the Apply button, `n` or Esc closes; once applied,
the screen shows the plan read afresh, which is empty when everything went in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Label, Static

from core.errors import HeldBack
from tui.calls import Failure, ask_service
from tui.widgets.dialogs import Dialog, Working

if TYPE_CHECKING:
    from core.service.api import NetconAPI
    from core.views import PlanView


class PlanApplied(Message):
    """What an apply did (how many operations, on which host, and the problems that held
    networks back), and the plan read after it."""

    def __init__(
        self, applied: int, host: str, held: tuple[str, ...], after: PlanView
    ) -> None:
        super().__init__()
        self.applied, self.host, self.held, self.after = applied, host, held, after


class ApplyRefused(Message):
    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure


class PlanScreen(Dialog):
    DEFAULT_CSS = """
    PlanScreen > .dialog { width: 90; height: auto; max-height: 100%; }
    PlanScreen #plan-operations { height: auto; max-height: 14; }
    PlanScreen #plan-status { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Close"),
        Binding("y", "apply", "Apply", show=False),
        Binding("left,right,tab,shift+tab", "switch", "Switch button", show=False),
        Binding("down,j", "scroll(1)", "Down", show=False),
        Binding("up,k", "scroll(-1)", "Up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("home,g", "edge(0)", "Top", show=False),
        Binding("end,G", "edge(1)", "Bottom", show=False),
    ]

    def __init__(self, api: NetconAPI, plan: PlanView, can_apply: bool) -> None:
        super().__init__()
        self.api = api
        self.wants_apply = can_apply
        self.plan = plan
        self.can_apply = self._appliable(plan)
        # What the last apply did, shown above the plan read after it.
        self.outcome: Content | None = None

    def _appliable(self, plan: PlanView) -> bool:
        return self.wants_apply and bool(plan.operations) and (plan.partial or not plan.problems)

    def compose(self) -> ComposeResult:
        plan = self.plan
        count = len(plan.operations)
        with Vertical(classes="dialog plan"):
            yield Label(
                Content(f"Plan for {plan.host}: {count} operation(s)"), classes="dialog-title"
            )
            with VerticalScroll(id="plan-operations"):
                parts: list[str | tuple[str, str]] = []
                for problem in plan.problems:
                    parts += [(f"✗ {problem}", "$error"), "\n"]
                for warning in plan.warnings:
                    parts += [(f"! {warning}", "$warning"), "\n"]
                for line in plan.describe():
                    parts.append(f"  {line}\n")
                if not plan.operations and plan.problems:
                    # Held back: the host does not match, but nothing else is to change.
                    parts.append("  nothing else to change\n")
                elif not plan.operations:
                    parts.append("  nothing to change: the host matches the database\n")
                yield Static(Content.assemble(*parts).rstrip())
            yield Static(self._status(), id="plan-status", classes="dialog-note")
            yield Working()
            with Horizontal(classes="dialog-buttons"):
                hint = "↑↓ PgUp PgDn" + (" · y apply · n close" if self.can_apply else " scroll")
                yield Static(hint, classes="dialog-hint")
                yield Button("Close", id="close", compact=True)
                if self.can_apply:
                    yield Button(
                        f"Apply {count} on {plan.host}", variant="warning", id="apply",
                        compact=True,
                    )

    def _status(self) -> Content:
        plan = self.plan
        if self.outcome is not None:
            return self.outcome
        if not self.wants_apply:
            return Content("")
        if plan.problems and plan.partial:
            rest = "; applying brings in everything else." if plan.operations else "."
            return Content.styled(
                f"The networks named above are held back until their problem is fixed{rest}",
                "$warning",
            )
        if plan.problems:
            return Content.styled(
                f"Cannot apply: {len(plan.problems)} problem(s) above must be fixed first "
                "(apply changes nothing while any is left).",
                "$error",
            )
        if not plan.operations:
            return Content("Nothing to apply.")
        return Content("")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def _scroller(self) -> VerticalScroll:
        return self.query_one("#plan-operations", VerticalScroll)

    def action_scroll(self, lines: int) -> None:
        self._scroller().scroll_relative(y=lines, animate=False)

    def action_page(self, pages: int) -> None:
        scroller = self._scroller()
        scroller.scroll_relative(y=pages * max(1, scroller.size.height - 1), animate=False)

    def action_edge(self, bottom: int) -> None:
        scroller = self._scroller()
        (scroller.scroll_end if bottom else scroller.scroll_home)(animate=False)

    def action_switch(self) -> None:
        buttons = [b for b in self.query(Button) if b.display and not b.disabled]
        if len(buttons) > 1:
            current = buttons.index(self.focused) if self.focused in buttons else -1
            buttons[(current + 1) % len(buttons)].focus()

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#apply")
    def _apply_pressed(self) -> None:
        self.action_apply()

    def action_apply(self) -> None:
        if not self.can_apply or self.busy:
            return
        self.busy = True
        self.query_one("#apply", Button).disabled = True
        self.query_one(Working).start(f"applying {len(self.plan.operations)} operation(s)")
        ask_service(
            self, self.api, _apply_and_replan, lambda applied: applied, ApplyRefused,
            group="apply",
        )

    @on(PlanApplied)
    def _applied(self, applied: PlanApplied) -> None:
        message = Content(f"applied {applied.applied} operation(s) on {applied.host}")
        if applied.held:
            message = Content.styled(
                f"{message.plain}; held back: {len(applied.held)} problem(s) above", "$warning"
            )
        self._finished(message, applied.after)

    @on(ApplyRefused)
    def _failed(self, refused: ApplyRefused) -> None:
        failure = refused.failure
        word = "refused" if failure.refused else "failed"
        self._finished(Content.styled(f"apply {word}: {failure.message}", "$error"), None)

    def _finished(self, message: Content, after: PlanView | None) -> None:
        self.busy = False
        self.query_one(Working).stop()
        self.app.notify(message.plain, timeout=6)
        # The console's header and rows follow what the host now owes.
        main = self.app.screen_stack[0]
        refresh = getattr(main, "action_refresh_now", None)
        if callable(refresh):
            refresh()
        if after is None:
            self.query_one("#plan-status", Static).update(message)
            self.query_one("#close", Button).focus()
            return
        # The plan as it is now, not the one just carried out.
        self.plan = after
        self.can_apply = self._appliable(after)
        self.outcome = message
        self.refresh(recompose=True)
        self.call_after_refresh(self._focus_close)

    def _focus_close(self) -> None:
        self.query_one("#close", Button).focus()


def _apply_and_replan(api: NetconAPI) -> PlanApplied:
    """Apply, then read the plan again: what is left (nothing, or what was held back).
    An apply that held networks back applied the rest: it is no refusal."""
    try:
        done = api.host_apply_view()
    except HeldBack as held:
        after = api.host_plan_view()
        return PlanApplied(held.applied, after.host, held.problems, after)
    return PlanApplied(len(done.operations), done.host, done.problems, api.host_plan_view())
