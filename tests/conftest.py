"""Fixtures shared by the whole suite: a SQLite file and a real PostgreSQL 15 server.

PostgreSQL refuses to run as root, and the suite runs as root (it makes network
namespaces), so the server is started as the ``postgres`` user through ``runuser`` in
a temporary directory that user owns. It listens on a unix socket in that directory
and on 127.0.0.1 at a free port; fsync is off because nothing here needs to survive a
crash. Each test that asks for ``pg_url`` gets a database of its own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


def _postgres_unavailable() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return (
                f"PostgreSQL 15 is not installed ({PG_BIN / tool} is missing; "
                "Debian package postgresql-15)"
            )
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root but runuser (util-linux) is missing, so initdb cannot drop root"
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root but there is no {PG_USER!r} user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *argv]
    return argv


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        if log is not None and log.is_file():
            detail += "\n" + log.read_text()[-2000:]
        raise RuntimeError(f"{what} failed ({result.returncode}): {detail}")


class PostgresServer:
    """A throwaway PostgreSQL 15 server in a directory of its own, run as ``postgres``;
    it can be stopped and started again on the same port (an outage, a restart)."""

    def __init__(self, *, initialise: bool = True) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="nc-pg-"))
        self.data, self.log = self.workdir / "data", self.workdir / "pg.log"
        if os.geteuid() == 0:
            account = pwd.getpwnam(PG_USER)
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
        self.workdir.chmod(0o755)
        self.port = _free_port()
        self.running = False
        if not initialise:  # a standby: its data directory comes from pg_basebackup
            return
        _run(
            _as_server_user(
                [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                 "--no-sync", "-E", "UTF8", "--locale", "C"]
            ),
            "initdb",
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/"

    def conninfo(self, application: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres application_name={application}"

    def start(self, *, synchronous: bool = False, max_connections: int = 200) -> None:
        """``synchronous``: a commit waits for its WAL (and for a synchronous standby),
        for tests that count on committed changes surviving the server's death."""
        commit = "on" if synchronous else "off"
        options = (
            f"-k {self.workdir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit={commit} -c full_page_writes=off "
            f"-c max_connections={max_connections}"
        )
        _run(
            _as_server_user(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                 "-t", "60", "-o", options, "start"]
            ),
            "pg_ctl start",
            self.log,
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``fast`` first writes out what was committed (the server runs
        with synchronous_commit off, so an immediate stop may lose the last commits)."""
        if self.running:
            subprocess.run(
                _as_server_user(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
                ),
                capture_output=True,
                timeout=60,
                check=False,
            )
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class ReplicatedPostgres:
    """A primary and a streaming standby made from it with pg_basebackup, replicating
    synchronously (a commit returns once the standby has it, so a failover loses no
    committed change); :meth:`fail_over` kills the primary and promotes the standby."""

    def __init__(self) -> None:
        self.primary = PostgresServer()
        conf = self.primary.data / "postgresql.conf"
        with conf.open("a") as settings:
            settings.write(
                "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                "synchronous_standby_names = 'standby'\n"
            )
        with (self.primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self.primary.start(synchronous=True)
        self.standby = PostgresServer(initialise=False)
        self.seed_standby()

    def seed_standby(self) -> None:
        """Make :attr:`standby` a streaming copy of :attr:`primary` and start it."""
        _run(
            _as_server_user(
                [str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                 "-U", "postgres", "-D", str(self.standby.data), "-R", "-X", "stream",
                 "--no-sync"]
            ),
            "pg_basebackup",
        )  # fmt: skip
        with (self.standby.data / "postgresql.auto.conf").open("a") as auto:
            auto.write("primary_conninfo = '" + self.primary.conninfo("standby") + "'\n")
            # Once promoted it has no standby of its own to wait for.
            auto.write("synchronous_standby_names = ''\n")
        self.standby.start(synchronous=True)

    def url(self, database: str = "postgres", *, driver: str = "postgresql") -> str:
        """A libpq multi-host URL naming both servers, for the writable one."""
        return (
            f"{driver}://postgres@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
            f"/{database}?target_session_attrs=read-write"
        )

    def kill_primary(self) -> None:
        self.primary.stop("immediate")

    def promote(self) -> None:
        _run(
            _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(self.standby.data), "-w",
                             "promote"]),
            "pg_ctl promote",
            self.standby.log,
        )  # fmt: skip

    def remove(self) -> None:
        self.standby.remove()
        self.primary.remove()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL 15 server for the session; yields its base URL (no database name)."""
    reason = _postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def own_pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which it may stop and start."""
    reason = _postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def _admin(base_url: str, statement: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"nc_test_{uuid.uuid4().hex[:12]}"
    _admin(pg_server, f'CREATE DATABASE "{name}"')
    try:
        yield pg_server + name
    finally:
        # FORCE: a test that failed may have left a worker's connection open.
        _admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of its own for one test (created on first open)."""
    return f"sqlite:///{tmp_path / 'netcon.db'}"


class NatsServer:
    """A NATS server (Debian's nats-server) on a free port of 127.0.0.1, with its
    monitoring port, in a directory of its own; stopped by its PID, and startable again
    on the same ports (a broker's restart)."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="nc-nats-"))
        self.port = _free_port()
        self.monitor_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "nats.log").open("ab")
        self.process = subprocess.Popen(
            ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-m",
             str(self.monitor_port), "-P", str(self.workdir / "nats.pid")],
            stdout=log, stderr=log,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    if probe.recv(5) == b"INFO ":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server did not start: {(self.workdir / 'nats.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def connections(self) -> list[dict[str, object]]:
        """The server's clients with their subscriptions and message counts (/connz)."""
        import json
        import urllib.request

        address = f"http://127.0.0.1:{self.monitor_port}/connz?subs=1"
        with urllib.request.urlopen(address, timeout=5) as answer:
            return list(json.load(answer).get("connections") or [])

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A NATS server of the test's own, which it may stop and start."""
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    server = NatsServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()
