"""One apply at a time per host, and per rehearsal namespace.

`host apply`, the console's apply, auto-apply and the agent take this lock before they
look at the host and keep it until their plan is carried out: two plans made side by
side would both create the same bridge, both start the same dnsmasq, and one's rollback
would take away what the other built.

It is flock(2) on a file in the namespace's state directory, so the kernel drops it
when its holder exits, however it exits: a killed apply never leaves the host locked.
The holder writes who it is (pid, command, since when) into the same file, for a waiter
to name. The lock is re-entrant within one thread (an agent may hold it around several
syncs); another thread of the same process waits like any other process.

    lock = ApplyLock.of(state_dir, netns)
    if not lock.try_acquire(): print(lock.holder())
    with lock.hold(timeout=30, on_wait=lambda holder, waited: ...):
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import HostError
from core.linux.namespace import state_key

LOCK_FILE = "apply.lock"
# The first notice to a waiter comes after this long; then one every NOTICE_EVERY.
FIRST_NOTICE = 1.0
NOTICE_EVERY = 1.0
_POLL_MIN, _POLL_MAX = 0.002, 0.05


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: what a waiter is told."""

    pid: int
    command: str
    since: float  # seconds since the epoch

    @property
    def held_for(self) -> float:
        return max(0.0, time.time() - self.since)

    def describe(self) -> str:
        started = time.strftime("%H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} ({self.command}) since {started}, {self.held_for:.0f} s ago"


class LockBusy(HostError):
    """The lock is held by another apply (exit status 1, as any host failure)."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


WaitNotice = Callable[[Holder | None, float], None]

# Locks this process holds, by file: (thread, depth, file descriptor).
_held: dict[str, tuple[int, int, int]] = {}
_held_guard = threading.Lock()


def current_command() -> str:
    """How this process was started, as a waiter should read it: ``netcon host apply``."""
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    if words[0] == "__main__.py":
        words[0] = "netcon"
    text = " ".join(words)
    return text if len(text) <= 80 else text[:77] + "..."


class ApplyLock:
    def __init__(self, path: Path, where: str, *, command: str | None = None) -> None:
        self.path = path
        # "this host" or "namespace NAME", for messages.
        self.where = where
        self.command = command

    @classmethod
    def of(
        cls, state_dir: str | Path, netns: str | None, *, command: str | None = None
    ) -> ApplyLock:
        """The lock of this host (``netns`` None) or of one rehearsal namespace."""
        where = f"namespace {netns}" if netns else "this host"
        return cls(Path(state_dir) / state_key(netns) / LOCK_FILE, where, command=command)

    # -- taking and giving back --------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lock if it is free (or already this thread's); never waits."""
        key = str(self.path)
        with _held_guard:
            mine = _held.get(key)
            if mine is not None and mine[0] == threading.get_ident():
                _held[key] = (mine[0], mine[1] + 1, mine[2])
                return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._record(fd)
        with _held_guard:
            _held[key] = (threading.get_ident(), 1, fd)
        return True

    def acquire(self, timeout: float | None = None, on_wait: WaitNotice | None = None) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (None: as long as it takes;
        0: not at all). ``on_wait(holder, waited)`` is called after one second of
        waiting and every second after. Raises LockBusy when the time is up."""
        start = time.monotonic()
        notice = start + FIRST_NOTICE
        pause = _POLL_MIN
        while not self.try_acquire():
            now = time.monotonic()
            waited = now - start
            if timeout is not None and waited >= timeout:
                raise self._busy(waited)
            if on_wait is not None and now >= notice:
                on_wait(self.holder(), waited)
                notice = now + NOTICE_EVERY
            delay = pause if timeout is None else min(pause, max(0.0, start + timeout - now))
            time.sleep(delay)
            pause = min(pause * 2, _POLL_MAX)

    def release(self) -> None:
        key = str(self.path)
        with _held_guard:
            mine = _held.get(key)
            if mine is None or mine[0] != threading.get_ident():
                raise RuntimeError(f"the apply lock of {self.where} is not held by this thread")
            if mine[1] > 1:
                _held[key] = (mine[0], mine[1] - 1, mine[2])
                return
            del _held[key]
        fd = mine[2]
        # The record goes first: a waiter never reads a holder that has let go.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)

    @contextlib.contextmanager
    def hold(
        self, timeout: float | None = None, on_wait: WaitNotice | None = None
    ) -> Iterator[None]:
        self.acquire(timeout, on_wait)
        try:
            yield
        finally:
            self.release()

    def held(self) -> bool:
        """Whether this thread holds the lock."""
        mine = _held.get(str(self.path))
        return mine is not None and mine[0] == threading.get_ident()

    # -- who holds it ------------------------------------------------------------------

    def holder(self) -> Holder | None:
        """Who holds the lock now, as it wrote itself down; None if free or not yet said."""
        try:
            text = self.path.read_text()
            data = json.loads(text) if text else None
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        try:
            holder = Holder(int(data["pid"]), str(data["command"]), float(data["since"]))
        except (KeyError, TypeError, ValueError):
            return None
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return None  # written by one that has gone; the new holder has not written yet
        except PermissionError:
            pass
        return holder

    def busy_message(self, holder: Holder | None) -> str:
        who = holder.describe() if holder is not None else "another process"
        return f"another apply is changing {self.where}: {who}"

    def _busy(self, waited: float) -> LockBusy:
        holder = self.holder()
        message = self.busy_message(holder)
        if waited > 0:
            message += f"; gave up after waiting {waited:.0f} s"
        return LockBusy(message, holder)

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise HostError(f"cannot open the apply lock {self.path}: {exc.strerror}") from None

    def _record(self, fd: int) -> None:
        holder = {
            "pid": os.getpid(),
            "command": self.command or current_command(),
            "since": time.time(),
        }
        data = json.dumps(holder).encode()
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
