"""Engines and transactions for SQLite (embedded default) and PostgreSQL (shared store).

Every change of state is one write transaction. On SQLite a write transaction starts
with ``BEGIN IMMEDIATE`` so that two processes serialise on the database lock up front
instead of both reading, then one failing to upgrade its lock; on PostgreSQL the
allocation queries take row locks (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from core.errors import DatabaseError, InvalidInput

# The newest migration this netcon knows (core/store/migrations/versions). Opening a
# database compares it with the stored revision in one query; Alembic is imported only
# when the database is behind.
HEAD_REVISION = "0003"

_WRITE = "netcon_write"


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _ensure_wal(engine: Engine) -> None:
    # WAL lets readers (the console's refresh) run beside a writer. The mode is stored
    # in the file, so this writes only the first time.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()
    finally:
        raw.close()


class Database:
    """One database: an engine, a write session factory and a read session factory."""

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InvalidInput("--db", f"{url!r} is not a database URL") from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(url)
        elif self.dialect == "postgresql":
            if parsed.drivername == "postgresql":
                url = parsed.set(drivername="postgresql+psycopg").render_as_string(False)
            self.engine = create_engine(url, pool_pre_ping=True)
        else:
            raise InvalidInput("--db", "must be a sqlite:/// or postgresql:// URL")
        try:
            if self.dialect == "sqlite":
                _ensure_wal(self.engine)
            if migrate_schema and self.revision() != HEAD_REVISION:
                from core.store import migrate

                migrate.upgrade(self.engine)
        except (SQLAlchemyError, RuntimeError) as exc:
            detail = getattr(exc, "orig", None) or exc
            raise DatabaseError(f"database {self.safe_url}: {detail}") from None
        self._write_engine = self.engine.execution_options(**{_WRITE: True})

    def revision(self) -> str | None:
        """The schema revision stored in the database; None for an empty one."""
        with self.engine.connect() as connection:
            try:
                return connection.exec_driver_sql(
                    "SELECT version_num FROM alembic_version"
                ).scalar()
            except (OperationalError, ProgrammingError):
                return None

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that changes state: commits on success, rolls back on any error."""
        try:
            with self._write_engine.begin() as connection:
                yield connection
        except IntegrityError as exc:
            raise DatabaseError(f"the database refused the change: {exc.orig}") from None
        except OperationalError as exc:
            raise DatabaseError(f"database {self.safe_url}: {exc.orig}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise DatabaseError(f"database {self.safe_url}: {exc.orig}") from None

    def advisory_lock(self, connection: Connection, key: int) -> None:
        """Serialise a whole kind of change (e.g. creating ranges) across hosts.

        SQLite's write transaction already holds the only write lock; PostgreSQL needs
        an explicit one because overlap checks read rows that do not exist yet.
        """
        if self.dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def writable(self) -> bool:
        """Whether this process may change the database (the console's read-only mode)."""
        if self.dialect == "sqlite":
            database = make_url(self.url).database
            if database and database != ":memory:":
                return os.access(database, os.W_OK) and os.access(Path(database).parent, os.W_OK)
            return True
        try:
            with self.engine.connect() as connection:
                value = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
                return str(value) == "off"
        except OperationalError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def bulk_insert(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    """Insert many rows with the driver's executemany, inside the connection's transaction.

    Creating a /16 of floating IPs is 65,534 rows; building a dict per row for Core
    costs several times the insert itself, so the rows go to the driver as plain tuples.
    """
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    )
    batch = list(rows)
    if batch:
        connection.exec_driver_sql(statement, batch)  # type: ignore[arg-type]
