"""What a database must be for this netcon to open it, free of SQLAlchemy.

:class:`core.store.db.Database` applies these rules when the service opens a database;
the console's first screen applies the same ones to read its first rows on a bare
driver connection before SQLAlchemy has been imported (:mod:`core.store.listing`).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

# Every migration this netcon knows, oldest first (core/store/migrations/versions).
# Opening a database compares its stored revision with these in one query; Alembic is
# imported only when the database is behind.
# 0003 (security groups enforced) comes after 0007: it was written beside 0004-0007, and
# a database already at 0007 must still go through it.
REVISIONS = (
    "0001",
    "0002",
    "0004",
    "0006",
    "0007",
    "0003",
    "0008",
    "0009",
    "0010",
    "0011",
    "0012",
)
HEAD_REVISION = REVISIONS[-1]

SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_uri(path: Path, read_only: bool) -> str:
    """How to open the file: for writing; read-only beside an active writer (its -wal and
    -shm files are there to share); or, with no writer, as immutable, which reads the
    file alone and creates no -shm file a reader could not create (or should not leave
    behind, owned by a user who may only read)."""
    if not read_only:
        return f"file:{quote(str(path))}?mode=rwc"
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if wal.exists() and shm.exists():
        return f"file:{quote(str(path))}?mode=ro"
    return f"file:{quote(str(path))}?mode=ro&immutable=1"


def file_system(path: Path) -> str | None:
    """Why the file system holding ``path`` takes no writes ("read-only", "full"), or None.

    A full one is read like a read-only one: SQLite could not even create the shared
    memory file a reader needs beside the database."""
    try:
        info = os.statvfs(path.parent)
    except OSError:
        return None
    if info.f_flag & os.ST_RDONLY:
        return "mounted read-only"
    if info.f_bfree == 0 or (info.f_bavail == 0 and os.geteuid() != 0):
        return "full"
    return None


def writable(path: Path) -> bool:
    """Whether this process may write the database (its file, and the directory where
    SQLite keeps the -wal and -shm files beside it)."""
    if file_system(path) is not None:
        return False
    target = path if path.exists() else path.parent
    return os.access(target, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
