"""The one way the console calls the service: in a thread worker, never on the event
loop, with the answer or the refusal handed back on the event loop.

A refusal of the core (:class:`NetconError`) keeps the field it names, so a form can
show it under that field; anything else is reported as a failure in one line, and the
console stays up.

Every answer comes back as a typed message (:func:`ask_service`): the main screen's
reads (rows, pages, what the hosts owe), an action's call, a picker's choices, an apply.

`netcon` draws its first rows before the service exists (:mod:`tui.start`) and opens it
in a thread once they are up: calls reach it through a :class:`ServiceSlot`, where a
worker waits until the service is open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from core.errors import NetconError

if TYPE_CHECKING:
    from textual.dom import DOMNode
    from textual.message import Message

    from core.config import Settings
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


@dataclass(frozen=True)
class Opening:
    """A console started before its service: how to open the service, and what is known
    without it (the settings, the database as the header names it, whether this process
    may write it, and rows of a first view read the lean way, by view name)."""

    open: Callable[[], NetconAPI]
    settings: Settings
    url: str
    writable: bool
    first_rows: Mapping[str, Sequence[object]] = field(default_factory=dict)


class ServiceSlot:
    """The service, or the promise of it: the first worker that needs it opens it, and
    the others wait for that (never the event loop: :meth:`get` blocks)."""

    def __init__(
        self, api: NetconAPI | None = None, opener: Callable[[], NetconAPI] | None = None
    ) -> None:
        assert (api is None) != (opener is None), "a service or a way to open one"
        self._api = api
        self._opener = opener
        self._error: BaseException | None = None
        self._open = threading.Event()
        self._claimed = threading.Lock()
        if api is not None:
            self._open.set()

    @property
    def ready(self) -> bool:
        return self._open.is_set() and self._error is None

    def get(self) -> NetconAPI:
        """The service, opened in this thread if no other has begun to; raises what
        opening raised, to every caller."""
        if self._opener is not None and self._claimed.acquire(blocking=False):
            try:
                self._api = self._opener()
            except BaseException as exc:
                self._error = exc
            finally:
                self._open.set()
        self._open.wait()
        if self._error is not None:
            raise self._error
        assert self._api is not None
        return self._api


def ask_service(
    owner: DOMNode,
    api: NetconAPI | ServiceSlot,
    call: Callable[[NetconAPI], R],
    answer: Callable[[R], Message],
    refusal: Callable[[Failure], Message],
    *,
    group: str = "call",
    exclusive: bool = False,
    description: str = "",
) -> None:
    """Run ``call(api)`` in a worker; its result comes back to ``owner`` as the message
    ``answer(result)`` (or ``refusal(failure)``), handled in the owner's queue in turn
    with everything else it is told, never in the middle of another handler."""

    def work() -> None:
        try:
            result = call(api.get() if isinstance(api, ServiceSlot) else api)
        except Exception as exc:  # the console stays up whatever the core does
            owner.post_message(refusal(failure_of(exc)))
            return
        owner.post_message(answer(result))

    owner.run_worker(
        work,
        thread=True,
        group=group,
        exclusive=exclusive,
        exit_on_error=False,
        description=description or group,
    )
