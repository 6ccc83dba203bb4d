"""netcon's daemons found by what they are: program, command line and namespace.

A pid file can be lost (an apply killed between starting a daemon and its pid file,
two applies racing, a hand's rm) while the process it named keeps its sockets. So the
host layer also looks for its daemons in /proc: a process is netcon's when it runs the
program with a command line that names a file in netcon's state directory for this
namespace, and it is in this namespace when its network namespace is this one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
