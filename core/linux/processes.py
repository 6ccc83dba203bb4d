"""netcon's daemons found by what they are: program, command line and namespace.

A pid file can be lost (an apply killed between starting a daemon and its pid file,
two applies racing, a hand's rm) while the process it named keeps its sockets. So the
host layer also looks for its daemons in /proc: a process is netcon's when it runs the
program with a command line that names a file in netcon's state directory for this
namespace, and it is in this namespace when its network namespace is this one.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from core.linux.namespace import identity


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    argv: tuple[str, ...]
    # False: it runs in another network namespace (one since deleted and made again).
    here: bool


def find(program: str, marker: str, netns: str | None) -> list[Process]:
    """Live processes of ``program`` with an argument containing ``marker``.

    Helper processes a daemon forks with the same command line (dnsmasq's lease-script
    helper) are left out: only the daemon itself is listed.
    """
    name = program.encode()
    needle = marker.encode()
    found: dict[int, tuple[str, ...]] = {}
    for pid, raw in _command_lines():
        if needle not in raw:
            continue  # not one of ours
        words = raw.split(b"\0")
        if not words[0] or os.path.basename(words[0]) != name:
            continue  # a zombie (empty), or another program naming our files
        found[pid] = tuple(w.decode(errors="replace") for w in words if w)
    if not found:
        return []
    home = identity(netns)
    processes = []
    for pid, argv in found.items():
        ppid = parent(pid)
        if ppid in found and found[ppid] == argv:
            continue  # the daemon's own helper
        processes.append(Process(pid, ppid, argv, _namespace_of(pid) == home))
    return sorted(processes, key=lambda p: p.pid)


# Inside one_look(): the command lines of every process, read once for the whole block.
_LOOK: ContextVar[list[list[tuple[int, bytes]]] | None] = ContextVar("look", default=None)


@contextmanager
def one_look() -> Iterator[None]:
    """Within the block, every :func:`find` shares one read of the process table: a plan
    looks for dnsmasq, the metadata server and OpenVPN in one walk of /proc. Only for
    looking: a process started inside the block would not be seen."""
    token = _LOOK.set([])
    try:
        yield
    finally:
        _LOOK.reset(token)


def _command_lines() -> list[tuple[int, bytes]]:
    held = _LOOK.get()
    if held:
        return held[0]
    lines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            raw = _read(f"/proc/{entry}/cmdline")
            if raw is not None:  # None: gone meanwhile
                lines.append((int(entry), raw))
    if held is not None:
        held.append(lines)
    return lines


def argv_of(pid: int) -> tuple[str, ...] | None:
    """The command line of a live process (None: gone, or a zombie)."""
    raw = _read(f"/proc/{pid}/cmdline")
    if raw is None:
        return None
    words = tuple(w.decode(errors="replace") for w in raw.split(b"\0") if w)
    return words or None


def parent(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return 0
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else 0


def _read(path: str) -> bytes | None:
    # os-level reads: a look at every process costs a third of what file objects do.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)


def _namespace_of(pid: int) -> tuple[int, int] | None:
    try:
        info = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return info.st_dev, info.st_ino


# -- waiting for processes -------------------------------------------------------------

# How often a condition is looked at again while nothing wakes the wait earlier.
CHECK_INTERVAL = 0.05
# How long a process may take to end on SIGTERM, and then on SIGKILL.
STOP_TIMEOUT = 5.0


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has ended for every purpose here)."""
    return argv_of(pid) is not None


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until every one of ``pids`` has ended, at most ``timeout`` seconds; returns
    those still alive.

    Each is watched through a pidfd, which wakes the wait the moment it ends, whether
    or not it is our child; where a pidfd cannot be had (an old kernel), /proc is looked
    at every CHECK_INTERVAL instead.
    """
    deadline = time.monotonic() + timeout
    watched: dict[int, int] = {}  # pidfd -> pid
    looked: list[int] = []
    poller = select.poll()
    try:
        for pid in pids:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            except (AttributeError, OSError):
                looked.append(pid)
                continue
            watched[fd] = pid
            poller.register(fd, select.POLLIN)
        while True:
            looked = [pid for pid in looked if alive(pid)]
            left = deadline - time.monotonic()
            if not (watched or looked) or left <= 0:
                break
            wait = min(left, CHECK_INTERVAL) if looked else left
            for fd, _ in poller.poll(max(int(wait * 1000), 1)):
                poller.unregister(fd)
                os.close(fd)
                del watched[fd]
    finally:
        for fd in watched:
            os.close(fd)
    return sorted([*watched.values(), *looked])


def terminate(pids: Iterable[int], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM each, wait for them together, SIGKILL those that outlive ``timeout``."""
    left = wait_gone([pid for pid in pids if _send(pid, signal.SIGTERM)], timeout)
    if left:
        wait_gone([pid for pid in left if _send(pid, signal.SIGKILL)], timeout)


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    *,
    watch: int | None = None,
    running: Callable[[], bool] | None = None,
    interval: float = CHECK_INTERVAL,
) -> bool:
    """Wait at most ``timeout`` seconds for ``ready()``; returns whether it came true.

    Gives up early once the process it waits for has ended: ``watch`` (a pid, watched
    through its pidfd, so its end wakes the wait at once) or ``running()`` returning
    False. ``ready`` has the last word either way.
    """
    deadline = time.monotonic() + timeout
    fd: int | None = None
    if watch is not None:
        with contextlib.suppress(AttributeError, OSError):
            fd = os.pidfd_open(watch)
    try:
        poller = select.poll()
        if fd is not None:
            poller.register(fd, select.POLLIN)
        while True:
            if ready():
                return True
            ended = (running is not None and not running()) or (
                fd is None and watch is not None and not alive(watch)
            )
            left = deadline - time.monotonic()
            if ended or left <= 0:
                return ready()
            if poller.poll(max(int(min(left, interval) * 1000), 1)):
                return ready()  # the watched process ended
    finally:
        if fd is not None:
            os.close(fd)


def _send(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True
