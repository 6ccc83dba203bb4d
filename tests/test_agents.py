"""Which host owes which change, what it applied, and evacuating a dead host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.agent import ChangeWatch, PollWatch, PostgresWatch, SqliteWatch
from core.errors import Conflict, NotFound
from core.service import ChangeSet, NetconService
from core.service.base import CHANGES_CHANNEL
from core.service.demo import load_demo
from core.store.schema import host_changes, hosts
from tests.support import FIXED_TIME, make_service


@pytest.fixture(params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> NetconService:
    # PostgreSQL too: an agent reads and records its changes there in single statements.
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    service = make_service(tmp_path, url=url)
    load_demo(service)
    for name in ("nethost1", "nethost2", "nethost3"):
        service.heartbeat(name)
    return service


def _age(service: NetconService, host: str, seconds: int) -> None:
    with service.db.write() as connection:
        connection.execute(
            update(hosts)
            .where(hosts.c.name == host)
            .values(last_heartbeat=FIXED_TIME - timedelta(seconds=seconds))
        )


def test_a_change_names_the_hosts_that_must_apply_it(cloud: NetconService) -> None:
    told: list[ChangeSet] = []
    cloud.listeners.append(told.append)
    cloud.disassociate_floating_ip("203.0.113.1")
    (change,) = told
    assert change.hosts == {"nethost1"}
    assert change.floating_addresses == {"203.0.113.1"}
    assert change.change is not None
    with cloud.db.read() as connection:
        rows = (
            connection.execute(
                select(host_changes.c.host).where(host_changes.c.change_id == change.change)
            )
            .scalars()
            .all()
        )
    assert rows == ["nethost1"]
    # A change that touches no host (a new project) is owed by none.
    cloud.create_project("zeta", "flat")
    assert cloud.last_change is not None and cloud.last_change.hosts == frozenset()


def test_pending_until_recorded_as_applied(cloud: NetconService) -> None:
    before = cloud.pending_for("nethost1")
    cloud.disassociate_floating_ip("203.0.113.1")
    change = cloud.last_change
    assert change is not None and change.change is not None
    pending = cloud.pending_for("nethost1")
    assert change.change in pending.changes and "203.0.113.1" in pending.floating
    assert len(pending.changes) == len(before.changes) + 1
    status = cloud.change_status(change.change)
    assert status.pending_on == ("nethost1",)
    host = next(h for h in cloud.list_hosts() if h.name == "nethost1")
    assert host.pending == len(pending.changes)

    cloud.record_applied("nethost1", change.change)
    assert cloud.pending_for("nethost1").changes == ()
    assert cloud.change_status(change.change).pending_on == ()
    host = next(h for h in cloud.list_hosts() if h.name == "nethost1")
    assert (host.pending, host.applied_change, host.last_error) == (0, change.change, None)

    cloud.record_applied("nethost1", None, error="nft: something\nbroke")
    host = next(h for h in cloud.list_hosts() if h.name == "nethost1")
    assert host.last_error == "nft: something broke"


def test_evacuation_moves_networks_and_floating_ips_to_live_hosts(cloud: NetconService) -> None:
    _age(cloud, "nethost1", 3600)
    assert cloud.down_hosts() == ["nethost1"]
    moved = cloud.evacuate_host("nethost1", to="nethost2")
    assert {host for _, host in moved.networks} == {"nethost2"}
    assert {cidr for cidr, _ in moved.networks} == {n.cidr for n in cloud.list_networks() if n.host}
    assert dict(moved.floating)["203.0.113.1"] == "nethost2"
    assert {n.host for n in cloud.list_networks() if n.host} == {"nethost2"}
    assert cloud.last_change is not None
    assert {"nethost1", "nethost2"} <= cloud.last_change.hosts
    assert cloud.down_hosts() == []


def test_evacuation_spreads_over_live_hosts_when_not_told_where(cloud: NetconService) -> None:
    _age(cloud, "nethost1", 3600)
    moved = cloud.evacuate_host("nethost1")
    assert {host for _, host in moved.networks} == {"nethost2", "nethost3"}


@pytest.mark.parametrize(
    ("dead", "to", "error", "match"),
    [
        ("ghost", None, NotFound, "no network host named 'ghost'"),
        ("nethost1", None, Conflict, "nethost1 is alive"),
        ("nethost2", "nethost2", Conflict, "the host being evacuated"),
        ("nethost2", "../x", Exception, "to: "),
    ],
)
def test_evacuation_refusals(
    cloud: NetconService, dead: str, to: str | None, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        cloud.evacuate_host(dead, to)


def test_evacuation_to_a_down_host_is_refused(cloud: NetconService) -> None:
    _age(cloud, "nethost1", 3600)
    _age(cloud, "nethost3", 3600)
    with pytest.raises(Conflict, match="nethost3 is not a live network host"):
        cloud.evacuate_host("nethost1", to="nethost3")


def test_an_instance_is_placed_on_a_known_host(cloud: NetconService) -> None:
    placed = cloud.launch_instance("alpha", "far1", host="nethost3")
    assert placed.host == "nethost3"
    with pytest.raises(NotFound, match="no host named 'nowhere'"):
        cloud.launch_instance("alpha", "far2", host="nowhere")


def test_a_multi_host_network_gives_each_host_its_own_gateway(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    for name in ("h1", "h2"):
        service.heartbeat(name)
    service.create_networks("10.70.0.0/24", manager="flatdhcp", bridge="brmh", multi_host=True)
    service.create_project("ops", "flatdhcp")
    service.launch_instance("ops", "a1", host="h1")
    service.launch_instance("ops", "a2", host="h2")
    service.launch_instance("ops", "a3", host="h2")
    reserved = [
        f
        for f in service.list_fixed_ips().rows
        if f.reserved and f.address not in ("10.70.0.0", "10.70.0.1", "10.70.0.255")
    ]
    assert len(reserved) == 2  # one gateway address for h1, one for h2
    assert service.list_networks()[0].multi_host


def test_an_agent_waits_for_a_database_server_that_is_not_up_yet(tmp_path: Path) -> None:
    """A host that boots before its database server waits for it, saying so, and stops
    cleanly when told to; nothing listens on this loopback port."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "--db",
         f"postgresql://netcon@127.0.0.1:{port}/netcon", "agent", "--host", "h1"],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path)),
    )
    try:
        time.sleep(3)
        assert agent.poll() is None  # still there, waiting
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=10)
    assert agent.returncode == 0
    assert "database unreachable" in err and "retrying" in err
    assert "Traceback" not in err


# -- an agent checks what it was given before it touches the database -----------------


def _agent_cli(
    url: str, *words: str, config: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "--db", url, *words],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(os.environ, XDG_CONFIG_HOME=str(config)),
        timeout=60,
    )


def _hosts(service: NetconService) -> list[tuple[object, ...]]:
    with service.db.read() as connection:
        return [tuple(row) for row in connection.execute(select(hosts).order_by(hosts.c.name))]


@pytest.mark.parametrize(
    ("words", "setting", "field"),
    [
        (["agent", "--host", "h9", "--netns", "nc-absent-ns"], None, "--netns"),
        (["agent", "--host", "h9", "--netns", "x" * 300], None, "--netns"),
        (["agent", "--host", "bad host"], None, "--host"),
        (["agent", "--host", "h9", "--poll", "0"], None, "--poll"),
        # What netcon.toml gave it is checked as well.
        (["agent", "--host", "h9"], 'netns = "nc-absent-ns"', "netns"),
        # The same through a batch.
        (["batch"], None, "--netns"),
    ],
    ids=["netns-missing", "netns-too-long", "host", "poll", "netns-setting", "batch"],
)
def test_an_agent_refuses_before_it_heartbeats(
    cloud: NetconService, tmp_path: Path, words: list[str], setting: str | None, field: str
) -> None:
    config = tmp_path / "config"
    (config / "netcon").mkdir(parents=True)
    if setting is not None:
        (config / "netcon" / "netcon.toml").write_text(setting + "\n")
    stdin = "agent --host h9 --netns nc-absent-ns\n" if words == ["batch"] else None
    before = _hosts(cloud)
    result = _agent_cli(cloud.db.url, *words, config=config, stdin=stdin)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and f"{field}: " in lines[0], result.stderr
    assert "started" not in result.stderr and "stopped" not in result.stderr
    # No heartbeat, no row: the host is not shown alive by an agent that never ran.
    assert _hosts(cloud) == before
    assert "h9" not in {h.name for h in cloud.list_hosts()}


def test_an_agent_refuses_its_arguments_before_it_opens_the_database(tmp_path: Path) -> None:
    # Nothing answers on this port: an agent that opened the database first would wait
    # for it, saying "database unreachable; retrying", instead of refusing at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://netcon@127.0.0.1:{port}/netcon"
    for words, field in (
        (["agent", "--netns", "nc-absent-ns"], "--netns"),
        (["agent", "--host", "not a host"], "--host"),
    ):
        result = _agent_cli(url, *words, config=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"netcon: {field}: "), result.stderr
        assert "unreachable" not in result.stderr


def test_the_agent_itself_checks_before_its_first_heartbeat(cloud: NetconService) -> None:
    from core.agent import Agent
    from core.errors import InvalidInput

    said: list[str] = []
    before = _hosts(cloud)
    agent = Agent(cloud, "h9", "nc-absent-ns", on_apply=said.append)
    with pytest.raises(InvalidInput) as refused:
        agent.run(threading.Event())
    assert refused.value.field == "--netns"
    assert said == []
    assert _hosts(cloud) == before


def test_a_change_says_which_hosts_owe_it(cloud: NetconService) -> None:
    """owing(): the hosts that still owe the changes a caller just made, those that had
    them applied since, and nothing for a change no host serves."""
    with cloud.tracking_changes() as made:
        cloud.disassociate_floating_ip("203.0.113.1")
    assert len(made) == 1 and made[0].hosts == {"nethost1"}
    owing = cloud.owing(made)
    assert owing.pending_on == ("nethost1",) and owing.applied_on == ()
    cloud.record_applied("nethost1", made[0].change)
    assert cloud.owing(made).applied_on == ("nethost1",)
    assert cloud.owing(made).pending_on == ()

    # A network no host serves yet: saved, owed by nobody.
    with cloud.tracking_changes() as made:
        cloud.create_networks("10.77.0.0/24", manager="flatdhcp", bridge="brnew")
    owing = cloud.owing(made)
    assert (owing.pending_on, owing.applied_on) == ((), ())
    assert owing.changes == (made[0].change,)

    # Each thread gathers its own changes only.
    with cloud.tracking_changes() as mine:
        other = threading.Thread(target=cloud.create_project, args=("omega", "flat"))
        other.start()
        other.join()
        cloud.create_project("sigma", "flat")
    assert len(mine) == 1 and mine[0] is cloud.last_change  # sigma's, not omega's


def _returns_on_stop(make: Callable[[], ChangeWatch]) -> bool | None:
    """What a watch's ``wait`` returns when stopped an hour before its timeout (None: it
    had not returned 30 s after the stop). Made, used and closed in one thread, as the
    agent does (a SQLite connection stays in its thread)."""
    stop = threading.Event()
    waiting = threading.Event()
    returned: list[bool] = []

    def wait() -> None:
        watch = make()
        try:
            waiting.set()
            returned.append(watch.wait(3600, stop))
        finally:
            watch.close()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    assert waiting.wait(30)
    stop.set()
    thread.join(30)
    return returned[0] if returned else None


@pytest.mark.parametrize("kind", ["sqlite", "poll", "postgresql"])
def test_a_stopped_agent_stops_waiting_for_a_change(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """SIGTERM sets the agent's stop while it waits for a change, which lasts until the
    next heartbeat: the wait sees it, so `systemctl stop` does not wait for that."""
    url = request.getfixturevalue("pg_url") if kind == "postgresql" else None
    service = make_service(tmp_path, url=url)
    makers: dict[str, Callable[[], ChangeWatch]] = {
        "sqlite": lambda: SqliteWatch(str(service.db.path)),
        "poll": lambda: PollWatch(3600),
        "postgresql": lambda: PostgresWatch(service.db.url, "nethost1", CHANGES_CHANNEL),
    }
    # False: no change came; the poll's every wake-up is a look at the database.
    assert _returns_on_stop(makers[kind]) is (kind == "poll")
