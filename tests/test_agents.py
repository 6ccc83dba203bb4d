"""Which host owes which change, what it applied, and evacuating a dead host."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.errors import Conflict, NotFound
from core.service import ChangeSet, NetconService
from core.store.schema import host_changes, hosts
from tests.support import FIXED_TIME, make_service


@pytest.fixture(params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> NetconService:
    # PostgreSQL too: an agent reads and records its changes there in single statements.
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    service = make_service(tmp_path, url=url)
    service.load_demo()
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
