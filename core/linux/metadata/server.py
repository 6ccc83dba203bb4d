"""One metadata server process: launched, waited for until it listens (or abandoned),
and probed."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import HostError
from core.linux import namespace, processes
from core.linux.metadata.spec import START_TIMEOUT, ServerFiles


class Launch(Protocol):
    """What starting a server takes (StartMetadataServer has it)."""

    @property
    def argv(self) -> tuple[str, ...]: ...

    @property
    def env(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def files(self) -> ServerFiles: ...

    @property
    def port(self) -> int: ...


# How often the wait looks for the pid file: the server listens some 0.1 s after it
# starts, and the apply ends once it does.
READY_INTERVAL = 0.005


def launch(op: Launch) -> Starting:
    """Start the server without waiting for it (a Python process and its imports): what
    is left of the apply goes on meanwhile; :meth:`Starting.wait` then waits for it to
    listen."""
    try:
        return Starting(op, spawn(op))
    except HostError as exc:
        return Starting(op, None, str(exc))


def wait_all(launched: Sequence[Starting], netns: str | None) -> list[str]:
    """Wait for each launched server to listen; why each that did not."""
    failures = []
    for starting in launched:
        try:
            starting.wait(netns)
        except HostError as exc:
            failures.append(str(exc))
    return failures


@dataclass
class Starting:
    """A server started and not yet known to listen (``child`` None: it could not be
    started, for ``error``)."""

    op: Launch
    child: subprocess.Popen[bytes] | None
    error: str = ""

    def wait(self, netns: str | None) -> int:
        if self.child is None:
            raise HostError(self.error)
        return _wait_listening(self.op, self.child, netns)

    def abandon(self) -> None:
        """Stop it: the apply failed before it could be told to serve."""
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait()


def spawn(op: Launch) -> subprocess.Popen[bytes]:
    """Start the server, not waiting for it."""
    op.files.directory.mkdir(parents=True, exist_ok=True)
    op.files.pid.unlink(missing_ok=True)
    log = open(op.files.log, "ab")  # noqa: SIM115 - handed to the child
    try:
        # Started here, not in ``netns``: it opens its listening socket there itself.
        return subprocess.Popen(
            list(op.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=dict(op.env),
            start_new_session=True,
        )
    except OSError as exc:
        raise HostError(f"metadata server: cannot start {op.argv[0]}: {exc.strerror}") from None
    finally:
        log.close()


def _wait_listening(op: Launch, child: subprocess.Popen[bytes], netns: str | None) -> int:
    """Wait (at most START_TIMEOUT from now) until ``child`` listens; its pid."""
    # The server writes its pid file once it listens: the port is then its own, not
    # another program's.
    if processes.wait_until(
        lambda: pid_in(op.files.pid) == child.pid and listens(netns, op.port),
        START_TIMEOUT,
        watch=child.pid,
        interval=READY_INTERVAL,
    ):
        return child.pid
    if child.poll() is not None:
        raise HostError(
            f"metadata server exited at start (status {child.returncode}): "
            f"{_last_line(op.files.log)}"
        )
    child.kill()
    child.wait()
    raise HostError(
        f"metadata server did not listen on port {op.port} within {START_TIMEOUT:.0f} s: "
        f"{_last_line(op.files.log)}"
    )


def listens(netns: str | None, port: int) -> bool:
    with namespace.entered(netns):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no output"
