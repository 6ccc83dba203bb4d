"""Wake-ups through a real NATS broker: a change wakes only the hosts it names, on their
own subjects; a broker that is away costs a change nothing and the agents poll the
change table instead; heartbeats are one statement that wakes nobody."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event, select

from core.bus import BusWatch, Publisher, bus_url
from core.errors import InvalidInput
from core.service import NetconService
from core.service.demo import load_demo
from core.store.schema import host_changes, hosts
from tests.conftest import NatsServer
from tests.support import make_service

pytestmark = pytest.mark.postgres


@pytest.fixture
def cloud(pg_url: str, nats_server: NatsServer, tmp_path: Path) -> NetconService:
    service = make_service(tmp_path, url=pg_url, bus=nats_server.url)
    load_demo(service)
    for name in ("nethost1", "nethost2", "nethost3"):
        service.heartbeat(name)
    return service


class Inbox:
    """What one host's agent would be woken by: a BusWatch on its subject."""

    def __init__(self, url: str, host: str) -> None:
        self.lines: list[str] = []
        self.watch = BusWatch(url, host, poll=60, on_state=self.lines.append)
        assert self.watch.up, self.lines
        self.watch.wait(0)  # the wake-up every new subscription starts with

    def woken(self, timeout: float) -> bool:
        return self.watch.wait(timeout)


def test_a_change_wakes_exactly_the_hosts_it_names(cloud: NetconService) -> None:
    url = cloud.settings.bus
    assert url is not None
    inboxes = {name: Inbox(url, name) for name in ("nethost1", "nethost2", "nethost3")}
    try:
        cloud.disassociate_floating_ip("203.0.113.1")  # NATed on nethost1
        change = cloud.last_change
        assert change is not None and change.hosts == {"nethost1"}
        assert inboxes["nethost1"].woken(10)
        # Published before the first host's wake-up: the others would have had theirs.
        assert not inboxes["nethost2"].woken(0.5)
        assert not inboxes["nethost3"].woken(0)
        # The change table still says what nethost1 owes: the wake-up only says "look".
        assert change.change in cloud.pending_for("nethost1").changes
    finally:
        for inbox in inboxes.values():
            inbox.watch.close()


def test_with_a_broker_no_notify_is_sent(cloud: NetconService, pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as listener:
        listener.execute("LISTEN netcon_changes")
        cloud.disassociate_floating_ip("203.0.113.1")
        assert list(listener.notifies(timeout=1.0)) == []


def test_a_broker_that_is_away_costs_a_change_nothing(
    cloud: NetconService, nats_server: NatsServer
) -> None:
    nats_server.stop()
    cloud.disassociate_floating_ip("203.0.113.1")
    change = cloud.last_change
    assert change is not None
    # Committed and owed: an agent polling the table finds it.
    assert change.change in cloud.pending_for("nethost1").changes
    # Later changes do not wait for the broker again (it is left alone for a while).
    cloud.create_project("zeta")
    cloud.disassociate_floating_ip("203.0.113.2")
    later = cloud.last_change
    assert later is not None and later.change in cloud.pending_for("nethost1").changes


def test_an_agent_polls_while_the_broker_is_away_and_wakes_again_after(
    nats_server: NatsServer,
) -> None:
    nats_server.stop()
    lines: list[str] = []
    watch = BusWatch(nats_server.url, "h1", poll=1, on_state=lines.append)
    try:
        assert not watch.up
        assert "unreachable" in lines[-1] and "every 1 s" in lines[-1]
        # Away: each wait is one look at the change table, at most a poll period long.
        assert watch.wait(30)
        nats_server.start()
        # Back: the subscription is made, and that is itself a wake-up (anything
        # published while away was lost).
        assert watch.wait(30)
        assert watch.up, lines
        assert lines[-1].startswith("wake-ups through")
        Publisher(nats_server.url).publish(["h1"], {"change": 1})
        assert watch.wait(30)
        # A restart of the broker: lost, then subscribed again by the client library.
        nats_server.stop()
        nats_server.start()
        publisher = Publisher(nats_server.url)
        got = threading.Event()

        def publish_until_woken() -> None:
            while not got.is_set():
                publisher.publish(["h1"], {"change": 2})
                got.wait(0.2)

        thread = threading.Thread(target=publish_until_woken)
        thread.start()
        try:
            while not watch.up:
                watch.wait(1)
            assert watch.wait(30)
        finally:
            got.set()
            thread.join()
        assert any("lost" in line for line in lines), lines
    finally:
        watch.close()


def test_publishing_to_a_broker_that_is_away_returns_false(nats_server: NatsServer) -> None:
    publisher = Publisher(nats_server.url)
    nats_server.stop()
    assert publisher.publish(["h1"], {"change": 1}) is False
    # A refusal costs nothing: the next publish tries again, and finds it back.
    nats_server.start()
    assert publisher.publish(["h1"], {"change": 2}) is True


def test_a_broker_that_does_not_answer_is_left_alone_for_a_while() -> None:
    # A listening socket that never speaks: connects, then the INFO line never comes.
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        publisher = Publisher(f"nats://127.0.0.1:{silent.getsockname()[1]}")
        assert publisher.publish(["h1"], {"change": 1}) is False
        assert publisher.quiet_until > 0
        # Left alone: no second connect attempt, so a batch pays the timeout once.
        assert publisher.publish(["h1"], {"change": 2}) is False
        assert publisher.socket is None


def test_a_heartbeat_is_one_statement_and_wakes_nobody(cloud: NetconService, pg_url: str) -> None:
    url = cloud.settings.bus
    assert url is not None
    others = Inbox(url, "nethost2")
    with cloud.db.read() as connection:
        owed = connection.execute(select(host_changes)).all()
    statements: list[str] = []
    event.listen(
        cloud.db.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append(statement),
    )
    try:
        plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as listener:
            listener.execute("LISTEN netcon_changes")
            cloud.heartbeat("nethost1")
            cloud.heartbeat("newhost")  # a host never seen: made by the same statement
            assert list(listener.notifies(timeout=0.5)) == []
        assert not others.woken(0.5)
    finally:
        others.watch.close()
    assert len(statements) == 2, statements
    assert all(s.lstrip().upper().startswith("INSERT INTO HOSTS") for s in statements)
    with cloud.db.read() as connection:
        beats = dict(connection.execute(select(hosts.c.name, hosts.c.last_heartbeat)).all())
        assert beats["newhost"] is not None
        assert connection.execute(select(host_changes)).all() == owed


@pytest.mark.parametrize(
    "value",
    ["http://127.0.0.1:4222", "nats://", "nats://host:99999", "nats://a b:1", "", "nats://h/x"],
)
def test_a_bus_that_is_no_nats_url_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        bus_url("bus", value)
    assert refused.value.field == "bus"


def test_a_cluster_of_brokers_is_taken() -> None:
    assert bus_url("bus", "nats://a:4222, nats://b") == "nats://a:4222,nats://b"


def test_an_agent_refuses_a_heartbeat_slower_than_the_down_time(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text(
        'host = "h1"\nhost_down_time = 10\nheartbeat_interval = 10\n'
        f'state_dir = "{tmp_path / "state"}"\n'
    )
    subprocess.run(
        [sys.executable, "-m", "tui", "--db", sqlite_url, "init"], check=True, capture_output=True
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "tui", "--db", sqlite_url, "agent"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("netcon:")]
    assert len(errors) == 1 and "heartbeat_interval" in errors[0], result.stderr
    # It never heartbeat: its host is not shown alive.
    listed = subprocess.run(
        [sys.executable, "-m", "tui", "--db", sqlite_url, "host", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert '"h1"' not in listed.stdout


def test_a_bad_bus_setting_is_refused_in_one_line(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text('bus = "amqp://rabbit"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "tui", "--db", sqlite_url, "project", "list"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "bus" in result.stderr, result.stderr


def test_a_stopped_agent_stops_waiting_for_a_wake_up(nats_server: NatsServer) -> None:
    """Stopped (SIGTERM) while it waits for a wake-up, the agent's wait returns then,
    not at the next heartbeat: no change came, so it says none."""
    watch = BusWatch(nats_server.url, "h1", poll=60, on_state=[].append)
    try:
        watch.wait(0)  # the wake-up every new subscription starts with
        stop = threading.Event()
        returned: list[bool] = []
        waiting = threading.Thread(
            target=lambda: returned.append(watch.wait(3600, stop)), daemon=True
        )
        waiting.start()
        stop.set()
        waiting.join(30)
        assert returned == [False]
    finally:
        watch.close()
