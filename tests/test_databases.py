"""Databases are opened, never invented; reading needs only read access; settings and
waits are explained in one line."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.service.demo import load_demo
from core.store import db as store
from core.store.migrate import alembic_config
from tests.conftest import PostgresServer
from tests.support import make_service, reading_user

ROOT = os.geteuid() == 0


def netcon(
    *args: str, env: dict[str, str] | None = None, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "tui", *args]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})},
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def digest(path: Path) -> str:
    return "".join(
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.glob(path.name + "*"))
    )


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    assert netcon("--db", f"sqlite:///{path}", "demo").returncode == 0
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


def test_the_revisions_known_are_the_migrations() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    walked = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert tuple(walked) == store.REVISIONS


def test_a_missing_directory_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo' / 'x.db'}"
    one_line(netcon("--db", url, "network", "list"), 2, "--db", "netcon init")
    assert not (tmp_path / "typo").exists()
    one_line(netcon("--db", url, "project", "create", "a"), 2, "no netcon database")
    assert not (tmp_path / "typo").exists()


def test_init_makes_a_database_on_purpose_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'x.db'}"
    first = netcon("--db", url, "init")
    assert first.returncode == 0 and "created, schema" in first.stdout
    again = netcon("--db", url, "--json", "init")
    assert again.returncode == 0 and '"created": false' in again.stdout
    assert netcon("--db", url, "network", "list").returncode == 0


@pytest.mark.postgres
def test_init_on_an_empty_postgres_database_says_it_created_the_schema(pg_url: str) -> None:
    # The database itself is the DBA's (created empty, as the fixture does); netcon makes
    # its schema, and says so once.
    first = netcon("--db", pg_url, "init")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(f": created, schema {store.HEAD_REVISION}")
    again = netcon("--db", pg_url, "init")
    assert again.returncode == 0
    assert again.stdout.strip().endswith(f": already there, schema {store.HEAD_REVISION}")
    assert '"created": false' in netcon("--db", pg_url, "--json", "init").stdout


@pytest.mark.postgres
def test_two_inits_of_one_empty_postgres_database_at_once_create_it_once(pg_url: str) -> None:
    argv = [sys.executable, "-m", "tui", "--db", pg_url, "--json", "init"]
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent"}
    started = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    outcomes = [process.communicate(timeout=60) for process in started]
    assert [process.returncode for process in started] == [0, 0, 0], outcomes
    said = sorted('"created": true' in out for out, _ in outcomes)
    assert said == [False, False, True]


def test_the_default_database_is_created_with_a_message(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    env_without_url = {k: v for k, v in os.environ.items() if k != "NETCON_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "tui", "network", "list"],
        capture_output=True,
        text=True,
        env={**env_without_url, **env, "XDG_CONFIG_HOME": "/nonexistent"},
        check=False,
    )
    assert result.returncode == 0
    assert result.stderr.startswith("netcon: created database ")
    assert (tmp_path / "data" / "netcon" / "netcon.db").is_file()


def test_another_applications_database_is_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.execute("INSERT INTO users VALUES ('x')")
    connection.commit()
    connection.close()
    before = digest(path)
    for words in (["network", "list"], ["init"], ["demo"], ["project", "create", "a"]):
        one_line(netcon("--db", f"sqlite:///{path}", *words), 2, "holds tables but not netcon's")
    assert digest(path) == before


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(os.urandom(4096)), "is not an SQLite database"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + os.urandom(4000)), str(0)),
    ],
    ids=["directory", "random-bytes", "damaged"],
)
def test_a_broken_database_file_is_one_line_naming_it(tmp_path: Path, make, cause: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "broken.db"
    make(path)
    result = netcon("--db", f"sqlite:///{path}", "network", "list")
    line = one_line(result, 1, str(path))
    assert "internal error" not in line
    if cause != "0":
        assert cause in line


def test_a_newer_schema_is_refused_and_left_alone(demo_db: Path) -> None:
    connection = sqlite3.connect(demo_db)
    connection.execute("UPDATE alembic_version SET version_num = '0999'")
    connection.commit()
    connection.close()
    before = digest(demo_db)
    one_line(netcon("--db", f"sqlite:///{demo_db}", "network", "list"), 1, "0999", "newer netcon")
    assert digest(demo_db) == before


def test_ids_beyond_the_database_range_are_bad_input(demo_db: Path) -> None:
    url = f"sqlite:///{demo_db}"
    one_line(netcon("--db", url, "network", "show", "99999999999999999999"), 2, "network:")
    one_line(netcon("--db", url, "secgroup", "rule", "remove", "4294967296"), 2, "rule:")


def test_a_long_bad_value_is_quoted_short(demo_db: Path) -> None:
    line = one_line(
        netcon("--db", f"sqlite:///{demo_db}", "project", "create", "x" * 10_000), 2, "project:"
    )
    assert len(line) < 300


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ('public_interface = "eth0; flush ruleset"', "public_interface"),
        ('dhcp_domain = "novalocal\\nserver=1.2.3.4"', "dhcp_domain"),
        ('vxlan_group = "not-an-ip"', "vxlan_group"),
        ('vxlan_group = "10.0.0.1"', "vxlan_group"),
        ('host = "../../etc"', "host"),
        ("dhcp_lease_time = -1", "dhcp_lease_time"),
        ('state_dir = "/etc"', "state_dir"),
        ('state_dir = "relative/dir"', "state_dir"),
        ('fixed_range = "0.0.0.0/0"', "fixed_range"),
        ('vpn_ip = "nowhere"', "vpn_ip"),
        ('network_manager = "neutron"', "network_manager"),
        ('dnsmasq_binary = "dnsmasq --conf-file=/tmp/x"', "dnsmasq_binary"),
        ("vxlan_port = 0", "vxlan_port"),
        ("quota_floating_ips = -5", "quota_floating_ips"),
        ('bogus_setting = "x"', "bogus_setting"),
    ],
)
def test_settings_are_checked_when_read(tmp_path: Path, setting: str, key: str) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text(setting + "\n")
    result = netcon(
        "--db", f"sqlite:///{tmp_path / 'x.db'}", "init",
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )  # fmt: skip
    one_line(result, 2, str(config / "netcon.toml"), key)
    assert not (tmp_path / "x.db").exists()


def test_a_settings_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_bytes(b'dhcp_domain = "caf\xe9"\n')
    result = netcon(
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
        "init",
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    one_line(result, 2, "netcon.toml", "UTF-8")


def test_the_console_tables_of_the_settings_file_are_not_settings(tmp_path: Path) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text('[contexts]\nprod = "red"\n[keys]\nquit = "q"\n')
    result = netcon(
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
        "init",
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert result.returncode == 0, result.stderr


def test_a_write_waiting_on_the_lock_says_so_and_gives_up_at_the_timeout(demo_db: Path) -> None:
    holder = sqlite3.connect(demo_db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        result = netcon(
            "--db", f"sqlite:///{demo_db}", "--lock-timeout", "2.5",
            "project", "create", "late", "--manager", "flat",
        )  # fmt: skip
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1 and waited >= 2.5
    lines = result.stderr.splitlines()
    assert lines[0].startswith("netcon: waiting for the database's write lock")
    assert "of 2 s" in lines[0] or "of 3 s" in lines[0]
    assert "gave up waiting for the write lock" in lines[-1]
    assert "late" not in netcon("--db", f"sqlite:///{demo_db}", "project", "list").stdout


def test_a_write_that_gets_the_lock_goes_on(demo_db: Path) -> None:
    holder = sqlite3.connect(demo_db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiting = subprocess.Popen(
        [sys.executable, "-m", "tui", "--db", f"sqlite:///{demo_db}",
         "project", "create", "late", "--manager", "flat"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent"},
    )  # fmt: skip
    try:
        # Released only once the writer has said that it waits.
        assert waiting.stderr is not None
        first = waiting.stderr.readline()
        assert first.startswith("netcon: waiting for the database's write lock"), first
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0
    assert "late" in out


@pytest.mark.postgres
def test_a_postgres_write_waiting_on_a_row_lock_names_the_holder(pg_url: str) -> None:
    service = make_service(Path("/nonexistent"), url=pg_url)
    load_demo(service)
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, application_name="netcon console") as holder:
        holder.execute("SELECT * FROM projects WHERE name = 'alpha' FOR UPDATE")
        result = netcon(
            "--db", pg_url, "--lock-timeout", "3", "floating", "allocate", "--project", "alpha",
        )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "held by pid" in lines[0] and "netcon console" in lines[0]
    assert lines[-1].startswith("netcon: database ")


def test_a_postgres_session_carries_the_lock_timeout(pg_url: str) -> None:
    database = store.Database(pg_url, lock_timeout=3)
    with database.read() as connection:
        assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "3s"
    with database.single() as connection:
        assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "3s"
    database.dispose()


def test_a_pooled_postgres_connection_idle_through_a_restart_is_replaced(
    own_pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = make_service(Path("/nonexistent"), url=own_pg_server.url + "postgres")
    service.heartbeat("nethost1")
    assert [h.name for h in service.list_hosts()] == ["nethost1"]
    own_pg_server.stop("fast")  # fast: what was committed is kept
    own_pg_server.start()
    # Idle for longer than the ping interval: the dead connection is found and replaced.
    monkeypatch.setattr(store, "_PING_AFTER_IDLE", 0.0)
    assert [h.name for h in service.list_hosts()] == ["nethost1"]
    assert service.pending_for("nethost1").changes == ()
    service.db.dispose()


# -- read access only, read-only and full file systems (root makes these) --------------


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[str]:
    with reading_user(tmp_path) as name:
        yield name


def test_a_user_who_may_only_read_reads_and_leaves_no_file(demo_db: Path, reader: str) -> None:
    demo_db.parent.chmod(0o755)
    demo_db.chmod(0o644)
    before = sorted(p.name for p in demo_db.parent.iterdir())
    url = f"sqlite:///{demo_db}"
    listing = netcon("--db", url, "network", "list", user=reader)
    assert listing.returncode == 0, listing.stderr
    assert "10.0.0.0/24" in listing.stdout
    for words in (["floating", "list", "--json"], ["instance", "list"], ["host", "list"]):
        assert netcon("--db", url, *words, user=reader).returncode == 0
    one_line(
        netcon("--db", url, "project", "create", "x", "--manager", "flat", user=reader),
        1,
        "read-only for this user",
    )
    assert sorted(p.name for p in demo_db.parent.iterdir()) == before


def test_the_read_only_console_opens_for_a_reader(demo_db: Path, reader: str) -> None:
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    demo_db.parent.chmod(0o755)
    demo_db.chmod(0o644)
    session = f"ncr-{os.getpid()}"
    socket_path = f"/tmp/ncr-tmux-{os.getpid()}"
    tmux = ["tmux", "-S", socket_path]
    command = (
        f"exec runuser -u {reader} -- env TERM=xterm-256color XDG_CONFIG_HOME=/nonexistent "
        f"HOME=/nonexistent {sys.executable} -m tui --read-only --db sqlite:///{demo_db}"
    )
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True
    )
    pane = subprocess.run(
        [*tmux, "display", "-p", "-t", session, "#{pane_pid}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        screen = ""
        for _ in range(100):
            time.sleep(0.1)
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", session],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
            if "10.0.0.0/24" in screen:
                break
        assert "10.0.0.0/24" in screen, screen
    finally:
        # The console and runuser by their own pids: a hung-up console could outlive
        # its session, and runuser does not pass the hang-up on.
        subprocess.run(["pkill", "-TERM", "-P", pane], check=False)
        subprocess.run(["kill", "-TERM", pane], check=False)
        subprocess.run([*tmux, "kill-server"], check=False)
        for _ in range(50):
            alive = subprocess.run(["pgrep", "-P", pane], capture_output=True).returncode == 0
            if not alive:
                break
            time.sleep(0.1)
        Path(socket_path).unlink(missing_ok=True)
    assert sorted(p.name for p in demo_db.parent.iterdir()) == ["demo.db"]


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    if not ROOT:
        pytest.skip("mounting needs root")
    point = tmp_path / "mnt"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_read_only_file_system_reads_and_refuses_writes(demo_db: Path, small_mount: Path) -> None:
    shutil.copy(demo_db, small_mount / "n.db")
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    url = f"sqlite:///{small_mount / 'n.db'}"
    assert "10.0.0.0/24" in netcon("--db", url, "network", "list").stdout
    one_line(
        netcon("--db", url, "project", "create", "x", "--manager", "flat"), 1, "mounted read-only"
    )


def test_a_full_file_system_reads_and_refuses_writes(demo_db: Path, small_mount: Path) -> None:
    shutil.copy(demo_db, small_mount / "n.db")
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={small_mount / 'fill'}", "bs=64k"],
        capture_output=True,
        check=False,
    )
    url = f"sqlite:///{small_mount / 'n.db'}"
    assert "10.0.0.0/24" in netcon("--db", url, "network", "list").stdout
    one_line(netcon("--db", url, "project", "create", "x", "--manager", "flat"), 1, "is full")


def test_an_instance_name_in_another_case_is_refused(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    load_demo(service)
    from core.errors import Conflict

    with pytest.raises(Conflict, match="DHCP and DNS name of 'web1'"):
        service.launch_instance("alpha", "WEB1")
    with service.db.write() as connection, pytest.raises(Exception, match="UNIQUE"):
        connection.execute(
            text(
                "INSERT INTO instances (name, project_id, created_at) "
                "VALUES ('Web1', 1, '2026-01-01')"
            )
        )


READERS = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import make_service, reading_user

service = make_service(Path(sys.argv[1]))
service.create_networks("10.9.0.0/20", 1, 4096, manager="flat", bridge="br9", label="many")

def read(offset: int) -> int:
    return len(service.list_fixed_ips(network="10.9.0.0/20", offset=offset, limit=200).rows)

# More threads at once than a pool of per-thread connections keeps (the console reads
# windows of a big listing in a worker thread each while the admin holds PageDown).
with ThreadPoolExecutor(max_workers=24) as pool:
    for _ in range(5):
        assert sum(pool.map(read, range(0, 4096, 100))) > 0
print("ok")
"""


def test_many_threads_reading_at_once_each_have_their_own_connection(tmp_path: Path) -> None:
    # In a child process: a connection closed under a thread still reading crashes the
    # interpreter, which must fail this test, not end the run.
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", READERS, str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
