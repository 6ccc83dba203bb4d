"""A bare DB-API connection for the commands that must start fast.

dnsmasq runs the lease hook on every lease event and the shell runs name completion on
every Tab; both read or change a row or two, so they skip SQLAlchemy (a quarter of a
second to import) and talk to the driver directly, with the same settings the engine
uses (busy timeout, foreign keys).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from core.errors import DatabaseError, InvalidInput

BUSY_TIMEOUT_MS = 30_000


def utcnow() -> datetime:
    # As the schema's default timestamps: naive UTC.
    return datetime.now(UTC).replace(tzinfo=None)


class RawDatabase:
    def __init__(self, url: str, *, read_only: bool = False) -> None:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise InvalidInput("--db", f"{url[:80]!r} is not a database URL")
        backend = scheme.split("+", 1)[0]
        self.url = url
        self.sqlite = backend == "sqlite"
        try:
            if self.sqlite:
                self.connection: Any = _sqlite(rest, read_only)
            elif backend == "postgresql":
                import psycopg

                self.connection = psycopg.connect(f"postgresql://{rest}", autocommit=True)
            else:
                raise InvalidInput("--db", "must be a sqlite:/// or postgresql:// URL")
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseError(f"database {url}: {exc}") from None

    @property
    def row_lock(self) -> str:
        # SQLite's write transaction already holds the only write lock.
        return "" if self.sqlite else " FOR UPDATE"

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self.connection.execute(self._sql(sql), tuple(params))
        return list(cursor.fetchall())

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        cursor = self.connection.execute(self._sql(sql), tuple(params))
        return int(cursor.rowcount)

    def begin_write(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.connection.execute("ROLLBACK")

    def close(self) -> None:
        self.connection.close()

    def timestamp(self, value: datetime) -> object:
        # SQLAlchemy keeps SQLite datetimes as text in this exact form; rows written here
        # must read back through the ORM.
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else value

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")


def _sqlite(rest: str, read_only: bool) -> sqlite3.Connection:
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        raise InvalidInput("--db", "an in-memory database holds nothing to read")
    mode = "ro" if read_only else "rw"
    # mode=ro/rw never creates a file: a mistyped path is an error, not a new database.
    connection = sqlite3.connect(
        f"file:{quote(path)}?mode={mode}",
        uri=True,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection
