"""Runs an action as its view declares it: refusal said up front, then a picker, a
form, a confirmation, the call, and what the admin is told.

Every step is data from ``tui/views/``; this module is the only place that turns it
into dialogs and service calls, for one row or for every marked row. Each call runs in
a worker of the main screen and comes back to it as a typed message (an
:class:`ActionDone`, :class:`ActionRefused`, :class:`ChoicesRead`, :class:`ScreenRead`
or :class:`OpenRefused`) carrying what was asked, which the runner then carries on with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from textual.app import App

from tui.calls import Failure, ServiceSlot, ask_service, failure_of
from tui.screens.answers import ActionAnswer
from tui.views.base import (
    BaseAction,
    Choice,
    Confirm,
    Drill,
    Outcome,
    Pick,
    PickMany,
    RowAction,
    Situation,
    Values,
    ViewAction,
    ViewSpec,
)

if TYPE_CHECKING:
    from textual.screen import Screen

    from core.service.api import NetconAPI
    from core.views import OwingView
    from tui.screens.frame import MainFrame
    from tui.widgets.dialogs import ConfirmDialog, FormDialog


class Stage(Protocol):
    """What the runner needs of the screen it runs on."""

    @property
    def app(self) -> App[Any]: ...

    @property
    def service(self) -> ServiceSlot: ...

    def situation(self) -> Situation: ...

    def this_host(self) -> str: ...

    def show_working(self, what: str | None) -> None: ...

    def go(self, drill: Drill) -> None: ...

    def reads_host(self) -> bool: ...

    def changed(
        self, action: BaseAction, message: str, owing: OwingView | None, warn: bool
    ) -> None: ...


class Done(NamedTuple):
    """A call's outcome, and where the changes it made stand (the core says)."""

    outcome: Outcome
    owing: OwingView


@dataclass(frozen=True)
class Call:
    """A service call an action made: the dialog it was submitted from (open while the
    call runs, and told a refusal under the field it names), or none; ``bulk``: one
    call for every marked row."""

    action: BaseAction
    dialog: FormDialog | ConfirmDialog | None = None
    bulk: bool = False


@dataclass(frozen=True)
class Offer:
    """A picker waiting for its choices: what it is for, and the step after it."""

    label: str
    item: object
    pick: Pick[Any] | PickMany[Any]
    then: Callable[[Values], None]


class ActionDone(ActionAnswer):
    def __init__(self, runner: ActionRunner, call: Call, done: Done) -> None:
        super().__init__()
        self.runner = runner
        self.call, self.done = call, done

    def deliver(self, screen: MainFrame) -> None:
        self.runner.succeeded(self.call, self.done)


class ActionRefused(ActionAnswer):
    def __init__(self, runner: ActionRunner, call: Call, failure: Failure) -> None:
        super().__init__()
        self.runner = runner
        self.call, self.failure = call, failure

    def deliver(self, screen: MainFrame) -> None:
        self.runner.refused(self.call, self.failure)


class ChoicesRead(ActionAnswer):
    def __init__(self, runner: ActionRunner, offer: Offer, choices: Sequence[Any]) -> None:
        super().__init__()
        self.runner = runner
        self.offer, self.choices = offer, choices

    def deliver(self, screen: MainFrame) -> None:
        self.runner.offer(self.offer, self.choices)


class ScreenRead(ActionAnswer):
    """A screen to open (a host's plan, a VPN's configuration), read in the worker."""

    def __init__(self, runner: ActionRunner, factory: Callable[[], Screen[object]]) -> None:
        super().__init__()
        self.runner = runner
        self.factory = factory

    def deliver(self, screen: MainFrame) -> None:
        self.runner.opened(self.factory)


class OpenRefused(ActionAnswer):
    """A picker's choices or a screen could not be read."""

    def __init__(self, runner: ActionRunner, what: str, failure: Failure) -> None:
        super().__init__()
        self.runner = runner
        self.what, self.failure = what, failure

    def deliver(self, screen: MainFrame) -> None:
        self.runner.failed_open(self.what, self.failure)


class ActionRunner:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    @property
    def service(self) -> ServiceSlot:
        return self.stage.service

    @property
    def _owner(self) -> Screen[Any]:
        # Workers belong to the main screen, which outlives every dialog.
        return self.stage.app.screen_stack[0]

    def _warn(self, message: str) -> None:
        self.stage.app.notify(message, severity="warning", timeout=5)

    def _error(self, title: str, failure: Failure) -> None:
        word = "refused" if failure.refused else "failed"
        self.stage.app.notify(failure.message, title=f"{title} {word}", severity="error",
                              timeout=8)

    def _ask(self, call: Call, work: Callable[[NetconAPI], Outcome]) -> None:
        """Run ``work`` in a worker; what came of it comes back as a message."""
        ask_service(
            self._owner, self.service, self._tracked(work),
            lambda done: ActionDone(self, call, done),
            lambda failure: ActionRefused(self, call, failure),
            group="action",
        )  # fmt: skip

    def _open(self, what: str, read: Callable[[NetconAPI], Callable[[], Screen[object]]]) -> None:
        ask_service(
            self._owner, self.service, read, lambda factory: ScreenRead(self, factory),
            lambda failure: OpenRefused(self, what, failure), group="action",
        )  # fmt: skip

    def _offer(self, offer: Offer) -> None:
        pick = offer.pick
        self.stage.show_working(offer.label)
        ask_service(
            self._owner, self.service, lambda api: pick.choices(api, offer.item),
            lambda choices: ChoicesRead(self, offer, choices),
            lambda failure: OpenRefused(self, offer.label, failure), group="action",
        )  # fmt: skip

    def _tracked(self, call: Callable[[NetconAPI], Outcome]) -> Callable[[NetconAPI], Done]:
        """``call``, and then which hosts owe the changes it made."""
        look_here = self.stage.reads_host()

        def run(api: NetconAPI) -> Done:
            with api.tracking_changes() as made:
                outcome = call(api)
            return Done(outcome, api.owing(made, look_here=look_here))

        return run

    # -- entry points -------------------------------------------------------------------

    def run_view_action(self, action: ViewAction) -> None:
        function = action.call
        assert function is not None

        def call(values: Values) -> Callable[[NetconAPI], Outcome]:
            scope = self.stage.situation().scope
            return lambda api: function(api, values, scope)

        def after_form(values: Values) -> None:
            if action.confirm is not None:
                self._confirm(action, action.confirm(values), call(values))
            else:
                self._direct(action, call(values))

        if action.pick_many is not None:
            scope = self.stage.situation().scope
            self._offer(Offer(action.label, scope, action.pick_many, after_form))
            return
        if action.form is None:
            after_form(Values())
            return
        form = action.form(self.stage.situation())
        if action.confirm is None:
            self._form_then_call(action, form, call)
        else:
            self._form_then(form, after_form)

    def run_row_action(
        self, spec: ViewSpec[Any], action: RowAction[Any], items: Sequence[object]
    ) -> None:
        if not items:
            self._warn(f"Select a {spec.noun[0]} first")
            return
        hosts = {spec.host(item) or self.stage.this_host() for item in items}
        if action.this_host_only:
            elsewhere = hosts - {self.stage.this_host()}
            if elsewhere:
                self._warn(
                    f"{action.label} acts on the machine the console runs on "
                    f"({self.stage.this_host()}); run netcon on {', '.join(sorted(elsewhere))} "
                    "for that host"
                )
                return
        if len(items) > 1:
            self._bulk(spec, action, items)
            return
        item = items[0]
        reason = action.refuse(item)
        if reason is not None:
            self._warn(reason)
            return
        if action.goto is not None:
            self.stage.go(action.goto(item))
            return
        if action.open is not None:
            opener = action.open
            self.stage.show_working(action.label)
            self._open(action.label, lambda api: opener(api, item))
            return

        function = action.call
        assert function is not None

        def call(values: Values) -> Callable[[NetconAPI], Outcome]:
            return lambda api: function(api, item, values)

        def after_pick_and_form(values: Values) -> None:
            if action.confirm is not None:
                self._confirm(action, action.confirm(item, values), call(values))
            else:
                self._direct(action, call(values))

        def after_pick(values: Values) -> None:
            if action.form is None:
                after_pick_and_form(values)
                return
            form = action.form(self.stage.situation(), item)
            if action.confirm is None:
                self._form_then_call(action, form, call)
            else:
                self._form_then(form, after_pick_and_form)

        if action.pick is not None:
            self._offer(Offer(action.label, item, action.pick, after_pick))
        elif action.pick_many is not None:
            self._offer(Offer(action.label, item, action.pick_many, after_pick))
        else:
            after_pick(Values())

    def open_drill(self, drill: Drill) -> None:
        opener = drill.open
        assert opener is not None
        self.stage.show_working("Opening")
        self._open("Open", opener)

    # -- what the workers brought back ---------------------------------------------------

    def opened(self, factory: Callable[[], Screen[object]]) -> None:
        self.stage.show_working(None)
        self.stage.app.push_screen(factory())

    def failed_open(self, what: str, failure: Failure) -> None:
        self.stage.show_working(None)
        self._error(what, failure)

    def offer(self, offer: Offer, choices: Sequence[Any]) -> None:
        """A picker with the choices read: one of them, or any of them ticked."""
        self.stage.show_working(None)
        if not choices:
            self._warn(offer.pick.empty(offer.item))
            return
        if isinstance(offer.pick, PickMany):
            self._tick(offer, list(choices))
            return
        from tui.widgets.dialogs import PickDialog

        def chosen(value: object) -> None:
            if isinstance(value, str):
                offer.then(Values({"choice": value}))

        self.stage.app.push_screen(PickDialog(offer.pick.title(offer.item), list(choices)),
                                   chosen)

    def _tick(self, offer: Offer, choices: list[tuple[Choice, bool]]) -> None:
        before = [choice.value for choice, ticked in choices if ticked]

        def chosen(value: object) -> None:
            if isinstance(value, list) and value != before:
                offer.then(Values({"chosen": value, "before": before}))

        from tui.widgets.checklist import ChecklistDialog

        self.stage.app.push_screen(
            ChecklistDialog(offer.pick.title(offer.item), choices, offer.label), chosen
        )

    def succeeded(self, call: Call, done: Done) -> None:
        dialog = call.dialog
        if dialog is not None:
            dialog.busy = False
            dialog.dismiss(None)
        message = done.outcome.message
        if call.bulk:
            self.stage.changed(call.action, message, done.owing, warn="refused" in message)
            return
        self.stage.show_working(None)
        if done.outcome.show is not None:
            self.stage.app.push_screen(done.outcome.show())
        self.stage.changed(call.action, message, done.owing, warn=False)

    def refused(self, call: Call, failure: Failure) -> None:
        """A refusal goes back to the dialog the call was made from (under the field it
        names); a call made without one says it in a toast."""
        if call.dialog is not None:
            call.dialog.refused(failure)
            return
        self.stage.show_working(None)
        self._error(call.action.label, failure)

    # -- steps --------------------------------------------------------------------------

    def _form_then(self, form: Any, then: Callable[[Values], None]) -> None:
        from tui.widgets.dialogs import FormDialog

        def answered(values: object) -> None:
            if isinstance(values, Values):
                then(values)

        self.stage.app.push_screen(FormDialog(form), answered)

    def _form_then_call(
        self,
        action: BaseAction,
        form: Any,
        call: Callable[[Values], Callable[[NetconAPI], Outcome]],
    ) -> None:
        """The form stays open while the call runs; a refusal comes back to it."""
        from tui.widgets.dialogs import FormDialog

        def submit(dialog: FormDialog, values: Values) -> None:
            dialog.working(action.label)
            self._ask(Call(action, dialog), call(values))

        self.stage.app.push_screen(FormDialog(form, submit))

    def _confirm(
        self,
        action: BaseAction,
        confirm: Confirm,
        call: Callable[[NetconAPI], Outcome],
        targets: Sequence[str] = (),
    ) -> None:
        from tui.widgets.dialogs import ConfirmDialog

        def run(dialog: ConfirmDialog) -> None:
            dialog.working(action.label)
            self._ask(Call(action, dialog), call)

        self.stage.app.push_screen(ConfirmDialog(confirm, run, targets))

    def _direct(
        self, action: BaseAction, call: Callable[[NetconAPI], Outcome]
    ) -> None:
        self.stage.show_working(action.label)
        self._ask(Call(action), call)

    # -- marks ----------------------------------------------------------------------------

    def _bulk(self, spec: ViewSpec[Any], action: RowAction[Any], items: Sequence[object]) -> None:
        singular, plural = spec.noun
        refused = [(item, action.refuse(item)) for item in items]
        ready = [item for item, reason in refused if reason is None]
        skipped = [reason for _item, reason in refused if reason is not None]
        if not ready:
            self._warn(f"None of the {len(items)} marked {plural} can be "
                       f"{action.past}: {skipped[0]}")
            return
        count = len(ready)
        noun = singular if count == 1 else plural
        question = f"{action.label}: {count} {noun}?"
        if skipped:
            question += f" ({len(skipped)} marked left out: {skipped[0]})"
        confirm = Confirm(question, f"{count} {noun}", f"{action.label} {count}")
        call = action.call
        assert call is not None

        def each(api: NetconAPI) -> Outcome:
            done = 0
            failures: list[str] = []
            for item in ready:
                try:
                    call(api, item, Values())
                    done += 1
                except Exception as exc:  # one refusal must not stop the rest
                    failures.append(f"{action.name(item)}: {failure_of(exc).message}")
            message = f"{done} {singular if done == 1 else plural} {action.past}"
            if failures:
                message += f"; {len(failures)} refused ({failures[0]})"
            return Outcome(message)

        from tui.widgets.dialogs import ConfirmDialog

        def run(dialog: ConfirmDialog) -> None:
            dialog.working(f"{action.label} {count}")
            self._ask(Call(action, dialog, bulk=True), each)

        names = [action.name(item) for item in ready]
        self.stage.app.push_screen(ConfirmDialog(confirm, run, names))
