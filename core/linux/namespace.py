"""Which network namespace the host layer acts in, and how it enters it.

The calling thread itself steps into the namespace (setns) to open a socket or start
a program there: a socket belongs to the namespace it was made in, and a child
inherits its parent thread's. That costs a system call, where a helper process
(``nsenter``, or pyroute2's forked child) costs milliseconds each time. It is the one
way netcon enters a namespace: :func:`entered`, and :func:`run`, :func:`run_all` and
:func:`spawn` for programs, which use it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import HostError, InvalidInput
from core.validate import shown

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


# A namespace is a file in NETNS_DIR: its name is one file name of the kernel's.
NAME_MAX = 255


def check_netns(name: str | None, field: str = "--netns") -> None:
    """Refuse a namespace that does not exist: the host layer never creates one."""
    if name is None:
        return
    if not _is_file_name(name):
        raise InvalidInput(
            field,
            f"{shown(name)} is not a namespace name: 1-{NAME_MAX} bytes, no '/', not '.' or '..'",
        )
    if not (NETNS_DIR / name).exists():
        # An unknown name is bad input, like an unknown project: exit status 2.
        raise InvalidInput(
            field,
            f"network namespace {shown(name)} does not exist "
            f"(create it with 'ip netns add {name}')",
        )


def _is_file_name(name: str) -> bool:
    try:
        size = len(os.fsencode(name))
    except UnicodeEncodeError:
        return False
    return 0 < size <= NAME_MAX and "/" not in name and "\0" not in name and name not in (".", "..")


def state_key(name: str | None) -> str:
    """The state directory's sub-directory for one namespace (files must not mix)."""
    return "netns-" + name if name else "host"


def identity(netns: str | None) -> tuple[int, int] | None:
    """(device, inode) of the namespace: equal for every process inside it."""
    path = str(NETNS_DIR / netns) if netns else "/proc/self/ns/net"
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


_libc: Any = None


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12 has it
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextmanager
def entered(netns: str | None) -> Iterator[None]:
    """Run the block with this thread inside ``netns`` (None: stay where it is)."""
    if netns is None:
        yield
        return
    try:
        target = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HostError(f"network namespace {netns} does not exist") from None
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _setns(target)
            except OSError as exc:
                raise HostError(
                    f"cannot enter network namespace {netns}: {exc.strerror} "
                    "(it needs CAP_SYS_ADMIN: run as root)"
                ) from None
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(home)
    finally:
        os.close(target)


def run(
    netns: str | None, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a program inside ``netns``; a missing program is a HostError naming it."""
    try:
        with entered(netns):
            return subprocess.run(
                list(argv),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
    except FileNotFoundError:
        raise HostError(f"{argv[0]}: program not found; install it or set its path") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"{argv[0]} did not finish within {timeout:.0f} s") from None


def run_all(
    netns: str | None, argvs: Sequence[Sequence[str]], *, timeout: float = 30
) -> list[subprocess.CompletedProcess[str]]:
    """Run several programs inside ``netns`` at once, and wait for them all."""
    started: list[subprocess.Popen[str]] = []
    try:
        with entered(netns):
            for argv in argvs:
                started.append(
                    subprocess.Popen(
                        list(argv),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
        results = []
        for argv, process in zip(argvs, started, strict=True):
            out, err = process.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(list(argv), process.returncode, out, err))
        return results
    except FileNotFoundError:
        raise HostError(f"{argvs[0][0]}: program not found; install it or set its path") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"{argvs[0][0]} did not finish within {timeout:.0f} s") from None
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def spawn(netns: str | None, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a daemon inside ``netns`` (it forks away; the caller waits for the parent)."""
    try:
        with entered(netns):
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
    except FileNotFoundError:
        raise HostError(f"{argv[0]}: program not found; install it or set its path") from None
