"""Private files of the VPN state directory: 0700 directories, 0600 files, atomic writes."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import HostError


def private_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask and ignored for a directory that exists.
        os.chmod(path, 0o700)
    except OSError as exc:
        raise HostError(f"cannot create directory {path}: {exc.strerror}") from None
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """Replace ``path`` atomically; readers see the old file or the new one, never half."""
    payload = data.encode() if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            os.write(descriptor, payload)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise HostError(f"cannot write {path}: {exc.strerror}") from None


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise changes to one project's VPN files between processes."""
    private_dir(directory)
    descriptor = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
