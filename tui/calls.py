"""The one way the console calls the service: in a thread worker, never on the event
loop, with the answer or the refusal handed back on the event loop.

A refusal of the core (:class:`NetconError`) keeps the field it names, so a form can
show it under that field; anything else is reported as a failure in one line, and the
console stays up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from core.errors import NetconError

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from core.service.api import NetconAPI

R = TypeVar("R")


@dataclass(frozen=True)
class Failure:
    """Why a call did not succeed: the core's one line, and the field it names."""

    message: str
    field: str | None = None
    refused: bool = True  # False: not a refusal but a failure (a bug, a lost database)


def failure_of(exc: BaseException) -> Failure:
    if isinstance(exc, NetconError):
        return Failure(exc.message, getattr(exc, "field", None))
    return Failure(f"{type(exc).__name__}: {exc}", refused=False)


def call_service(
    owner: DOMNode,
    api: NetconAPI,
    call: Callable[[NetconAPI], R],
    done: Callable[[R], object],
    failed: Callable[[Failure], object],
    *,
    group: str = "call",
    exclusive: bool = False,
    description: str = "",
) -> None:
    """Run ``call(api)`` in a worker; then ``done(result)`` or ``failed(failure)``."""
    app = owner.app

    def answer(callback: Callable[..., object], value: object) -> None:
        # RuntimeError: the console closed while the call ran.
        with contextlib.suppress(RuntimeError):
            app.call_from_thread(callback, value)

    def work() -> None:
        try:
            result = call(api)
        except Exception as exc:  # the console stays up whatever the core does
            answer(failed, failure_of(exc))
            return
        answer(done, result)

    owner.run_worker(
        work,
        thread=True,
        group=group,
        exclusive=exclusive,
        exit_on_error=False,
        description=description or group,
    )
