"""Plain SQL on the DB-API cursor of a read's own transaction, for the readers that
turn thousands of rows into a host's desired state: no statement for SQLAlchemy to
compile (a command runs each once, cold), and rows as bare tuples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection


def rows(connection: Connection, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, whose parameters are written ``?`` (SQLite's style; the
    PostgreSQL driver's ``%s`` is put in for it there)."""
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def ids(values: Iterable[int]) -> str:
    """Ids read from the database, written into a statement as ``IN (...)``'s list."""
    return ",".join(str(int(value)) for value in sorted(values)) or "NULL"
