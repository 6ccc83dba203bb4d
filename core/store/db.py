"""Engines and transactions for SQLite (embedded default) and PostgreSQL (shared store).

Every change of state is one write transaction. On SQLite a write transaction starts
with ``BEGIN IMMEDIATE`` so that two processes serialise on the database lock up front
instead of both reading, then one failing to upgrade its lock; on PostgreSQL the
allocation queries take row locks (``FOR UPDATE SKIP LOCKED``).

A database is opened, never invented by accident: a file that is missing, foreign,
damaged or of a schema this netcon does not know is refused in one line, and nothing is
written to it. Read access is enough to read.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import NullPool, QueuePool, StaticPool

from core.defaults import LOCK_TIMEOUT
from core.errors import DatabaseError, DatabaseUnreachable, InvalidInput
from core.store.rules import (
    HEAD_REVISION,
    REVISIONS,
    SQLITE_HEADER,
    file_system,
    sqlite_uri,
    writable,
)

# How long one attempt at the SQLite write lock waits before the waiter is told.
_LOCK_STEP_MS = 1000
_WRITE = "netcon_write"
# A pooled PostgreSQL connection idle for longer than this is pinged before it is used.
_PING_AFTER_IDLE = 5.0

# Told while a write waits for the database lock: (seconds waited, what holds it).
WaitReporter = Callable[[float, str], None]


class Database:
    """One database: its engine, and write and read transactions on it."""

    def __init__(
        self,
        url: str,
        *,
        migrate_schema: bool = True,
        create: bool = True,
        lock_timeout: float = LOCK_TIMEOUT,
        application: str = "netcon",
    ) -> None:
        self.url = url
        if _is_postgres(url):
            # libpq's own URLs, several hosts included ("postgresql://db1,db2/netcon"),
            # which SQLAlchemy's URL parser does not take: the driver is given them whole.
            self.dialect = "postgresql"
        else:
            try:
                parsed = make_url(url)
            except ArgumentError:
                raise InvalidInput("--db", f"{url[:80]!r} is not a database URL") from None
            self.dialect = parsed.get_backend_name()
        self.lock_timeout = lock_timeout
        self.on_wait: WaitReporter | None = None
        # Whether this process may only read (file or file system not writable).
        self.read_only = False
        # Whether opening made a new, empty database (a command may say so).
        self.created = False
        self.path: Path | None = None
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                self.path = Path(database)
                self.created = self._prepare_file(self.path, create)
                self.read_only = not writable(self.path)
            self.engine = self._sqlite_engine(url)
        elif self.dialect == "postgresql":
            self.engine = self._postgres_engine(url, application)
        else:
            raise InvalidInput("--db", "must be a sqlite:/// or postgresql:// URL")
        try:
            self._open_schema(create, migrate_schema)
        except BaseException:
            # A database refused at opening is left as it was found, its WAL files
            # included: the connection that looked is closed before the error goes up
            # (a command's process does not collect it at exit).
            self.engine.dispose()
            raise
        self._write_engine = self.engine.execution_options(**{_WRITE: True})

    def _open_schema(self, create: bool, migrate_schema: bool) -> None:
        try:
            self._check_schema(create, migrate_schema)
        except OperationalError as exc:
            if self.dialect == "postgresql" and _unreachable(_cause(exc)):
                raise DatabaseUnreachable(f"database {self.safe_url}: {_cause(exc)}") from None
            raise DatabaseError(f"database {self.safe_url}: {_cause(exc)}") from None
        except (SQLAlchemyError, RuntimeError) as exc:
            raise DatabaseError(f"database {self.safe_url}: {_cause(exc)}") from None

    # -- opening --------------------------------------------------------------------

    def _prepare_file(self, path: Path, create: bool) -> bool:
        """Refuse a path that is no netcon database; returns whether one was created."""
        if path.is_dir():
            raise DatabaseError(f"database {path}: is a directory, not a database file")
        if path.exists():
            try:
                with path.open("rb") as file:
                    header = file.read(len(SQLITE_HEADER))
            except OSError as exc:
                raise DatabaseError(f"database {path}: cannot be read ({exc.strerror})") from None
            if header and header != SQLITE_HEADER:
                raise DatabaseError(
                    f"database {path}: is not an SQLite database (damaged, or another kind of file)"
                )
            if header:
                return False
        if not create:
            raise InvalidInput(
                "--db",
                f"no netcon database at {path}; make one on purpose with 'netcon init' "
                "(or 'netcon demo')",
            )
        if not path.parent.is_dir():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"database {path}: cannot create {path.parent} ({exc.strerror})"
                ) from None
        return True

    def _sqlite_engine(self, url: str) -> Engine:
        path = self.path
        read_only = self.read_only

        def connect() -> sqlite3.Connection:
            if path is None:
                return sqlite3.connect(":memory:", check_same_thread=False)
            return sqlite3.connect(
                sqlite_uri(path, read_only), uri=True, check_same_thread=False, timeout=0
            )

        # A reader without write access decides afresh for each connection whether a
        # writer is active (see sqlite_uri), so it takes no pooled connection; an
        # in-memory database lives in its one connection. A file gets a connection per
        # transaction from a queue: the pool SQLAlchemy picks for a "sqlite://" URL keeps
        # one per thread and, past five threads, closes other threads' connections while
        # they may be reading (the console's workers crashed the process that way).
        options: dict[str, Any] = {}
        if path is None:
            options["poolclass"] = StaticPool
        elif read_only:
            options["poolclass"] = NullPool
        else:
            options["poolclass"] = QueuePool
        engine = create_engine("sqlite://", creator=connect, **options)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the driver so BEGIN is ours to issue.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {_LOCK_STEP_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            if connection.get_execution_options().get(_WRITE, False):
                self._begin_immediate(connection)
            else:
                connection.exec_driver_sql("BEGIN")

        return engine

    def _postgres_engine(self, url: str, application: str) -> Engine:
        connect = PostgresConnector(url, application, self.lock_timeout, self.safe_url)
        engine = create_engine("postgresql+psycopg://", creator=connect)

        # A pooled connection is tried before use only when it has sat idle for a while:
        # the server may have restarted since. Pinging every checkout would add a round
        # trip to every transaction, which an agent pays on every apply. A database that
        # fails over is the exception: its primary may be another server since the last
        # transaction, and a change must not fail on the dead one's connection.
        always = connect.failover

        @event.listens_for(engine, "checkin")
        def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
            record.info["returned"] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            returned = record.info.get("returned")
            if returned is None:
                return
            if not always and time.monotonic() - returned < _PING_AFTER_IDLE:
                return
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                # The pool throws this connection away and makes a new one.
                raise DisconnectionError(str(exc)) from exc

        return engine

    def _check_schema(self, create: bool, migrate_schema: bool) -> None:
        revision, tables = self._schema_state()
        if revision is None and tables:
            raise InvalidInput(
                "--db",
                f"{self.safe_url} holds tables but not netcon's; it was left as it was",
            )
        if revision is not None and revision not in REVISIONS:
            raise DatabaseError(
                f"database {self.safe_url}: schema revision {revision} is unknown to this "
                f"netcon (it knows up to {HEAD_REVISION}): a newer netcon made it; upgrade netcon"
            )
        if revision == HEAD_REVISION or not migrate_schema:
            return
        if revision is None and not create:
            raise InvalidInput(
                "--db",
                f"{self.safe_url} holds no netcon schema; make it on purpose with 'netcon init'",
            )
        if self.read_only:
            what = "is empty" if revision is None else f"has schema {revision}, not {HEAD_REVISION}"
            raise DatabaseError(
                f"database {self.safe_url} {what} and is read-only for this user; "
                "open it once as a user who may write it",
                field="--db",
            )
        if self.dialect == "sqlite":
            _ensure_wal(self.engine)
        from core.store import migrate

        # An empty PostgreSQL database is made by someone else before netcon sees it: it
        # is created when its schema is, not when its file is.
        if migrate.upgrade(self.engine):
            self.created = True

    def _schema_state(self) -> tuple[str | None, int]:
        """The stored schema revision (None: none) and how many tables there are."""
        if self.dialect == "sqlite":
            tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            tables_sql = (
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        with self.engine.connect() as connection:
            names = set(connection.exec_driver_sql(tables_sql).scalars())
            if "alembic_version" not in names:
                return None, len(names)
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return revision.scalar(), len(names)

    def revision(self) -> str | None:
        """The schema revision stored in the database; None for an empty one."""
        return self._schema_state()[0]

    # -- transactions ----------------------------------------------------------------

    def _begin_immediate(self, connection: Any) -> None:
        """Take the SQLite write lock, telling ``on_wait`` each second it is held by
        another writer, and giving up after ``lock_timeout``."""
        start = time.monotonic()
        while True:
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                    raise
            waited = time.monotonic() - start
            if waited >= self.lock_timeout:
                raise DatabaseError(
                    f"database {self.safe_url}: gave up waiting for the write lock after "
                    f"{waited:.0f} s (another writer holds it; --lock-timeout sets the wait)"
                )
            if self.on_wait is not None:
                self.on_wait(waited, "another writer of this database file")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that changes state: commits on success, rolls back on any error."""
        if self.read_only:
            raise self._read_only()
        try:
            with (
                self._write_engine.begin() as connection,
                _PostgresWaitWatch(self, connection),
            ):
                yield connection
        except IntegrityError as exc:
            raise DatabaseError(f"the database refused the change: {exc.orig}") from None
        except DBAPIError as exc:
            raise DatabaseError(f"database {self.safe_url}: {_cause(exc)}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except DBAPIError as exc:
            raise DatabaseError(f"database {self.safe_url}: {_cause(exc)}") from None

    @contextmanager
    def single(self, *, write: bool = False) -> Iterator[Connection]:
        """For exactly one statement, which is then its own transaction. On PostgreSQL
        it goes without a BEGIN and a COMMIT around it (two round trips fewer: what an
        agent pays on every apply); on SQLite it is an ordinary transaction."""
        if self.dialect != "postgresql":
            with self.write() if write else self.read() as connection:
                yield connection
            return
        if write and self.read_only:
            raise self._read_only()
        try:
            with self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                yield connection
        except IntegrityError as exc:
            raise DatabaseError(f"the database refused the change: {exc.orig}") from None
        except DBAPIError as exc:
            raise DatabaseError(f"database {self.safe_url}: {_cause(exc)}") from None

    def advisory_lock(self, connection: Connection, key: int) -> None:
        """Serialise a whole kind of change (e.g. creating ranges) across hosts.

        SQLite's write transaction already holds the only write lock; PostgreSQL needs
        an explicit one because overlap checks read rows that do not exist yet.
        """
        if self.dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def _read_only(self) -> DatabaseError:
        """Why this process may not change the database, naming it (``--db`` under --json)."""
        state = file_system(self.path) if self.path is not None else None
        if state is not None:
            why = f"cannot be written: its file system is {state}"
        else:
            why = (
                "is read-only for this user (writing needs write permission on the file and "
                "its directory)"
            )
        return DatabaseError(f"database {self.safe_url} {why}", field="--db")

    @property
    def safe_url(self) -> str:
        if self.dialect == "postgresql":
            return _PASSWORD.sub(r"\1***@", self.url)
        return make_url(self.url).render_as_string(hide_password=True)

    def writable(self) -> bool:
        """Whether this process may change the database (the console's read-only mode)."""
        if self.dialect == "sqlite":
            return not self.read_only
        try:
            with self.engine.connect() as connection:
                value = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
                return str(value) == "off"
        except OperationalError:
            return False

    def reach(self) -> None:
        """Make sure a server can be reached: with a failover URL, wait for a writable one
        (up to the lock timeout), as every connection of the pool does. For a process
        about to open a connection of its own (an agent's LISTEN)."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except DBAPIError as exc:
            raise DatabaseError(f"database {self.safe_url}: {_cause(exc)}") from None

    def dispose(self) -> None:
        self.engine.dispose()


class _PostgresWaitWatch:
    """While a PostgreSQL write transaction runs, tell ``on_wait`` once a second whether
    it is blocked on another session's locks, naming that session."""

    def __init__(self, database: Database, connection: Connection) -> None:
        self.database = database
        self.connection = connection
        self.timer: Any = None
        self.started = time.monotonic()

    def __enter__(self) -> None:
        if self.database.dialect != "postgresql" or self.database.on_wait is None:
            return
        # The driver knows its server process: no query needed.
        driver = self.connection.connection.dbapi_connection
        backend = getattr(getattr(driver, "info", None), "backend_pid", None)
        if backend is None:
            backend = self.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        self._arm(int(backend or 0))

    def _arm(self, backend: int) -> None:
        import threading

        self.timer = threading.Timer(1.0, self._check, args=(backend,))
        self.timer.daemon = True
        self.timer.start()

    def _check(self, backend: int) -> None:
        reporter = self.database.on_wait
        try:
            with self.database.engine.connect() as probe:
                holder = probe.exec_driver_sql(
                    "SELECT a.pid, a.application_name, a.xact_start FROM pg_stat_activity a "
                    "WHERE a.pid = ANY(pg_blocking_pids(%(pid)s)) LIMIT 1",
                    {"pid": backend},
                ).first()
        except SQLAlchemyError:
            holder = None
        if holder is not None and reporter is not None:
            since = holder.xact_start.strftime("%H:%M:%S") if holder.xact_start else "?"
            reporter(
                time.monotonic() - self.started,
                f"pid {holder.pid} ({holder.application_name or 'unknown program'}, since {since})",
            )
        self._arm(backend)

    def __exit__(self, *_: object) -> None:
        if self.timer is not None:
            self.timer.cancel()


def _is_postgres(url: str) -> bool:
    scheme = url.partition("://")[0]
    return scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+")


# user:password@ in a URL: the password is never shown.
_PASSWORD = re.compile(r"(://[^:/@?]*:)[^@/?]*@")
# Connecting to one server gives up after this long (libpq's connect_timeout) unless the
# URL says otherwise: a server that drops packets must not hold a command for minutes.
CONNECT_TIMEOUT = 10


class PostgresConnector:
    """Makes the engine's connections from a libpq URL, one host or several.

    With several hosts, or ``target_session_attrs``, the database is expected to fail
    over: a connection that finds no writable server (the primary died and the standby
    is not promoted yet) is tried again until ``lock_timeout`` has passed, then the
    command fails in one line. With one plain host, a server that is down is said at
    once, as before."""

    def __init__(self, url: str, application: str, lock_timeout: float, shown: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        scheme, _, rest = url.partition("://")
        self.conninfo = f"postgresql://{rest}"
        try:
            given = conninfo_to_dict(self.conninfo)
        except Exception as exc:
            raise InvalidInput("--db", f"{shown[:80]!r} is not a database URL ({exc})") from None
        self.lock_timeout = lock_timeout
        self.shown = shown
        self.failover = "," in str(given.get("host", "")) or "target_session_attrs" in given
        # The lock timeout is the session's, set when the connection is made, so that a
        # write does not pay a round trip to set it each time; the URL's own server
        # options are kept.
        options = f"-c lock_timeout={int(lock_timeout * 1000)}"
        if given.get("options"):
            options = f"{given['options']} {options}"
        self.options: dict[str, Any] = {"application_name": application[:63], "options": options}
        if "connect_timeout" not in given:
            self.options["connect_timeout"] = max(2, min(CONNECT_TIMEOUT, int(lock_timeout)))

    def __call__(self) -> Any:
        import psycopg

        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return psycopg.connect(self.conninfo, **self.options)
            except psycopg.OperationalError as exc:
                cause = " ".join(str(exc).split())
                if not self.failover or not _failing_over(cause):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseUnreachable(
                        f"database {self.shown}: no writable server answered within "
                        f"{self.lock_timeout:g} s (--lock-timeout): {_last_line(cause)}"
                    ) from None
                time.sleep(0.25)


def _failing_over(cause: str) -> bool:
    """Whether a failed connection is what a failover looks like (servers down, or up
    but read-only), not a refusal that waiting will not change (a bad password)."""
    lowered = cause.lower()
    return _unreachable(cause) or "read-only" in lowered or "hot standby" in lowered


def _last_line(cause: str) -> str:
    # libpq says one sentence per host it tried: the last one is enough.
    parts = [part.strip() for part in cause.split("connection to server") if part.strip()]
    return ("connection to server " + parts[-1]) if len(parts) > 1 else cause


# What a PostgreSQL server that is down, starting or restarting makes the driver say (a
# refusal such as a missing database or a bad password says something else).
_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "the database system is",
    "timeout expired",
    "no such file or directory",
    "network is unreachable",
    "terminating connection",
)


def _unreachable(cause: str) -> bool:
    lowered = cause.lower()
    return any(phrase in lowered for phrase in _UNREACHABLE)


def _cause(exc: BaseException) -> str:
    detail = getattr(exc, "orig", None) or exc
    return " ".join(str(detail).split())


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
