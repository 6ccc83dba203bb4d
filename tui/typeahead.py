"""Keys handled one at a time, in the order they were typed.

Textual hands each key to the focused widget's queue at once and goes on to the next.
A key the widget does not take itself (Backspace, ctrl+u and Enter in an Input; `n` or
`D` on the table) then bubbles up to the app, whose bindings run it: by then the letters
typed after it have already reached the widget and been inserted, and a priority key
(`:`) has already run. So `10.0.0.30` Backspace `1/24` typed in one burst left
`10.0.0.301/2`, and `:fip` Enter `n` `:projects` Enter ran `n` on the projects view.

Here the app keeps typed keys (and pastes) in a queue and hands the next one over only
once the one before it has been handled (a letter an Input takes itself needs no
wait: it is handled in the Input's own queue, in order): a marker message follows the key along the
same path (focused widget, its parents, the app) and, a second time, follows what
handling it posted (an Input's Submitted reaching its dialog). A screen that is not
ready for keys (a view still reading its rows, a dialog whose call is running) holds
the queue until it posts :class:`KeysMayFlow`.

While typed keys wait behind the one being handled, the screen is not drawn: what a key
shows (a prompt opening, a view the next keys leave at once, a form's half-typed
field) is superseded by the keys after it, and drawing it would only delay them. The
screen is drawn once the queue is empty, or when a screen has held the keys for longer
than :data:`QUIET_LIMIT` (a slow read: the admin sees it loading). Work that the keys
after it may make pointless (reading a view's rows) can wait the same way
(:meth:`TypeAhead.when_keys_stop`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from textual import events
from textual.app import App
from textual.dom import DOMNode
from textual.message import Message

# How many times the marker follows a key: the key's own path, then the messages its
# handling posted (a binding's action posting Submitted, a dialog dismissing itself).
ROUNDS = 2
# A marker lost with the widget it was sent to releases the queue after this long
# rather than never (a dialog that closed releases it as soon as its screen is gone).
LOST_MARKER = 2.0
# The longest a screen holding keys goes undrawn while more keys wait.
QUIET_LIMIT = 0.25


@runtime_checkable
class HoldsKeys(Protocol):
    """A screen that may ask typed keys to wait (see the module's docstring)."""

    @property
    def holds_keys(self) -> bool: ...


@runtime_checkable
class LetsKeysThrough(Protocol):
    """A screen holding keys that lets some through: those that need nothing it waits
    for (a prompt's letters while a view's rows are read)."""

    def lets_through(self, event: events.Key | events.Paste) -> bool: ...


class KeysMayFlow(Message):
    """Posted to the app by a screen that held keys and is ready for them again."""


class KeyHandled(Message):
    """The marker that follows a key; it reaches the app once the key has been handled."""

    def __init__(self, flight: int, round_number: int) -> None:
        super().__init__()
        self.flight = flight
        self.round_number = round_number


def keys_ahead(app: App[Any]) -> TypeAhead | None:
    """The type-ahead queue of ``app``, if it keeps one."""
    queue = getattr(app, "typeahead", None)
    return queue if isinstance(queue, TypeAhead) else None


class TypeAhead:
    """The queue of one app's typed keys; the app calls :meth:`typed` for each key and
    paste from the terminal, :meth:`marker_arrived` and :meth:`resume` from handlers."""

    def __init__(self, app: App[Any], passing: frozenset[str] = frozenset()) -> None:
        self.app = app
        # Keys that never wait (quit now: the console must answer it whatever it does).
        self.passing = passing
        self._waiting: deque[events.Key | events.Paste] = deque()
        self._flight = 0  # the number of the key being handled; 0 when none is
        self._flights = 0
        self._lost_timer: asyncio.TimerHandle | None = None
        self._followed: DOMNode | None = None  # where the marker was sent
        # Textual's batch of updates, held while keys wait (see the module's docstring).
        self._quiet: AbstractContextManager[None] | None = None
        self._quiet_timer: asyncio.TimerHandle | None = None
        # What waits for the typed keys to stop flowing (see when_keys_stop).
        self._on_stop: list[Callable[[], None]] = []

    @property
    def waiting(self) -> int:
        """How many typed keys wait to be handed over."""
        return len(self._waiting)

    def when_keys_stop(self, then: Callable[[], None]) -> None:
        """Run ``then`` once no typed key waits to be handed over: now if none does, else
        once the keys ahead have been handled or a screen holds them (a view waiting for
        the rows ``then`` reads)."""
        if not self._waiting:
            then()
        else:
            self._on_stop.append(then)

    async def typed(self, event: events.Key | events.Paste) -> None:
        if isinstance(event, events.Key) and event.key in self.passing:
            await self._deliver(event)
            return
        self._waiting.append(event)
        await self.resume()

    def _held(self, event: events.Key | events.Paste | None = None) -> bool:
        """Whether the screen holds typed keys (``event``, the next, in particular)."""
        try:
            screen = self.app.screen
        except Exception:  # no screen yet: Textual itself has nowhere to send the key
            return False
        if not (isinstance(screen, HoldsKeys) and screen.holds_keys):
            return False
        return not (
            event is not None
            and isinstance(screen, LetsKeysThrough)
            and screen.lets_through(event)
        )

    async def resume(self) -> None:
        """Hand over the next waiting key unless one is being handled or the screen
        holds them."""
        if self._flight and self._marker_gone():
            self._finish()
        while not self._flight and self._waiting and not self._held(self._waiting[0]):
            event = self._waiting.popleft()
            self._hush()
            focused = self.app.focused
            if isinstance(event, events.Key) and focused is not None and (
                focused.check_consume_key(event.key, event.character)
            ):
                # A letter for an Input: it handles it itself, in its own queue, behind
                # the keys before it and ahead of those after it. Nothing to wait for.
                await self._deliver(event)
                continue
            self._flights += 1
            self._flight = self._flights
            await self._deliver(event)
            self._follow(self._target(), 1)
        if self._flight:
            return
        if not self._waiting:
            # Keys that came in the same read from the terminal are queued behind this
            # one as messages of the app: draw only once they have been handled too.
            self.app.call_later(self._speak_if_done)
            self._stopped()
            return
        # A screen holds the keys: what waited for them to stop may be what it waits for.
        self._stopped()
        if self._quiet_timer is None:
            # Drawn anyway if it holds them long.
            self._quiet_timer = asyncio.get_running_loop().call_later(
                QUIET_LIMIT, self._speak
            )

    def _stopped(self) -> None:
        waiting, self._on_stop = self._on_stop, []
        for then in waiting:
            then()

    def _hush(self) -> None:
        """A key is handed over: no frame until it, and the keys behind it, have been
        handled."""
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        if self._quiet is None:
            self._quiet = self.app.batch_update()
            self._quiet.__enter__()

    def _speak_if_done(self) -> None:
        if not self._waiting and not self._flight:
            self._speak()

    def _speak(self) -> None:
        """Draw the screen again, as it is now."""
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        quiet, self._quiet = self._quiet, None
        if quiet is not None:
            quiet.__exit__(None, None, None)

    async def _deliver(self, event: events.Key | events.Paste) -> None:
        # Textual's own way: priority bindings, then the focused widget.
        await App.on_event(self.app, event)  # type: ignore[arg-type]

    def _target(self) -> DOMNode:
        """Where Textual sends a key now: the focused widget, else the screen."""
        try:
            return self.app.focused or self.app.screen
        except Exception:  # no screen: the app answers its own marker
            return self.app

    def _follow(self, target: DOMNode, round_number: int) -> None:
        marker = KeyHandled(self._flight, round_number)
        # Sent by the target itself, so that it bubbles all the way up to the app.
        marker.set_sender(target)
        self._followed = target
        if self._lost_timer is not None:
            self._lost_timer.cancel()
        self._lost_timer = asyncio.get_running_loop().call_later(LOST_MARKER, self._lost)
        if not target.post_message(marker):
            self._lost()

    def _lost(self) -> None:
        self.app.post_message(KeyHandled(self._flight, ROUNDS))

    async def marker_arrived(self, marker: KeyHandled) -> None:
        if marker.flight != self._flight:
            return  # a late marker of a key already released
        if marker.round_number < ROUNDS and not self._held():
            self._follow(self._target(), marker.round_number + 1)
            return
        # Done; or a screen now holds the keys (a dialog opening), and says when the next
        # may come: what the key set off is its to finish.
        self._finish()
        await self.resume()

    def _finish(self) -> None:
        if self._lost_timer is not None:
            self._lost_timer.cancel()
            self._lost_timer = None
        self._flight = 0
        self._followed = None

    def _marker_gone(self) -> bool:
        """True when the marker went to a screen that is no longer on top (a dialog
        that closed): it will never arrive, and nothing it follows matters now."""
        target = self._followed
        if target is None or target is self.app:
            return False
        try:
            return target.screen is not self.app.screen  # type: ignore[attr-defined]
        except Exception:  # detached already
            return True
