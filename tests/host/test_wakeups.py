"""Agents on a real NATS broker and on a PostgreSQL that fails over, each host a
namespace kept by its own `netcon agent` process.

A change wakes the agent of its host through the broker; with the broker stopped it
is still applied, found by the agent's polling of the change table (the periodic
re-sync is set to an hour, so nothing else could have applied it); with the broker
back, wake-ups arrive on the agent's subscription again. A primary killed under
running agents and promoted standby lose no committed change, and the agents and a
`netcon` command carry on against the new primary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.service import NetconService
from tests.conftest import NatsServer, ReplicatedPostgres, _postgres_unavailable
from tests.host.agents import HOSTS, Cloud
from tests.host.conftest import Lab

pytestmark = pytest.mark.postgres

BUS_POLL = 2


def _configure(cloud: Cloud, extra: str) -> None:
    """Each host's netcon.toml, re-sync an hour away and ``extra`` added."""
    for name in HOSTS:
        path = cloud.tmp_path / f"config-{name}" / "netcon" / "netcon.toml"
        text = path.read_text().replace("agent_resync = 20", "agent_resync = 3600")
        path.write_text(text + extra)


def _subscriptions(server: NatsServer) -> dict[str, dict[str, Any]]:
    """The broker's clients by the one subject each subscribes to."""
    found = {}
    for connection in server.connections():
        for subject in connection.get("subscriptions_list") or []:
            found[str(subject)] = connection
    return found


def _hosts_file(lab: Lab, host: str, bridge: str) -> str:
    files = list((lab.state_dir / host).glob(f"**/dhcp/{bridge}.conf"))
    return files[0].read_text() if files else ""


def test_wake_ups_go_through_the_broker_and_polling_covers_its_absence(
    lab: Lab, pg_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    cloud = Cloud(lab, pg_url, tmp_path)
    _configure(cloud, f'bus = "{nats_server.url}"\nbus_poll = {BUS_POLL}\n')
    for name in HOSTS:
        cloud.start(name)
    cloud.wait_alive()
    cloud.wait(
        "every agent subscribed",
        lambda: set(_subscriptions(nats_server)) == {f"netcon.host.{h}" for h in HOSTS},
    )
    admin = cloud.service()
    admin.create_networks("10.60.0.0/24", 1, 256, 160)
    admin.create_project("alpha")
    admin.launch_instance("alpha", "a1")
    serving = admin.list_networks()[0].host
    assert serving is not None
    cloud.wait_applied()
    assert "10.60.0.1/24" in cloud.links(serving)["br160"]
    subscribed = _subscriptions(nats_server)
    woken = {h: int(subscribed[f"netcon.host.{h}"]["out_msgs"]) for h in HOSTS}
    assert woken[serving] > 0
    for other in HOSTS:
        if other != serving:
            assert woken[other] == 0, f"{other} was woken by a change for {serving}"
            assert "applied change" not in cloud.log(other)

    # The broker goes: the next change is still applied, found by polling.
    nats_server.stop()
    cloud.wait("the agents to see the broker gone", lambda: "lost" in cloud.log(serving))
    admin.launch_instance("alpha", "a2")
    cloud.wait(
        "a2 in the hosts file, by polling",
        lambda: "a2.novalocal" in _hosts_file(lab, serving, "br160"),
    )
    cloud.wait_applied()

    # Back: the agents subscribe again and the wake-ups arrive on the broker.
    nats_server.start()
    cloud.wait(
        "every agent subscribed again",
        lambda: set(_subscriptions(nats_server)) == {f"netcon.host.{h}" for h in HOSTS},
    )
    admin.launch_instance("alpha", "a3")
    cloud.wait(
        "a wake-up delivered to the serving host",
        lambda: int(_subscriptions(nats_server)[f"netcon.host.{serving}"]["out_msgs"]) > 0,
    )
    cloud.wait(
        "a3 in the hosts file",
        lambda: "a3.novalocal" in _hosts_file(lab, serving, "br160"),
    )
    cloud.wait_applied()
    again = _subscriptions(nats_server)
    for other in HOSTS:
        if other != serving:
            assert int(again[f"netcon.host.{other}"]["out_msgs"]) == 0
    admin.db.dispose()


@pytest.fixture
def replicated() -> Any:
    reason = _postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    servers = ReplicatedPostgres()
    try:
        yield servers
    finally:
        servers.remove()


def _netcon(url: str, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config-h1"),
        "NETCON_DATABASE_URL": url,
    }
    # The timeout only keeps a hanging command from hanging the suite.
    return subprocess.run(
        [sys.executable, "-m", "tui", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_failover_loses_no_committed_change_and_agents_follow_it(
    lab: Lab, replicated: ReplicatedPostgres, tmp_path: Path
) -> None:
    url = replicated.url("postgres")
    cloud = Cloud(lab, url, tmp_path)
    admin = NetconService(url, cloud.settings("h1"), actor="admin")
    admin.heartbeat("h1")
    for name in HOSTS:
        cloud.start(name)
    cloud.wait_alive()
    admin.create_networks("10.61.0.0/24", 1, 256, 170)
    admin.create_project("beta")
    admin.modify_network("10.61.0.0/24", project="beta", host="h2")
    made = [admin.launch_instance("beta", f"b{n}").name for n in range(5)]
    cloud.wait_applied()
    assert "10.61.0.1/24" in cloud.links("h2")["br170"]

    replicated.kill_primary()
    # No writable server: a change fails in one line within its lock timeout, and
    # nothing of it is written.
    refused = _netcon(url, tmp_path, "--lock-timeout", "3", "project", "create", "never")
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "no writable server answered within 3 s" in refused.stderr

    replicated.promote()
    launched = _netcon(url, tmp_path, "instance", "launch", "--project", "beta", "after")
    assert launched.returncode == 0, launched.stderr
    # The service the admin kept open carries on too: its pool tries each connection.
    admin.launch_instance("beta", "after2")
    cloud.wait_applied()
    hosts_file = _hosts_file(lab, "h2", "br170")
    for name in (*made, "after", "after2"):
        assert f"{name}.novalocal" in hosts_file, hosts_file
    assert "never" not in {p.name for p in admin.list_projects()}
    # The agents re-connected to the new primary and heartbeat there.
    before = {h.name: h.last_heartbeat for h in admin.list_hosts()}
    cloud.wait(
        "fresh heartbeats from every agent",
        lambda: all(
            h.last_heartbeat is not None and h.last_heartbeat > before[h.name]
            for h in admin.list_hosts()
            if h.name in HOSTS
        ),
    )
    for name in HOSTS:
        assert cloud.agents[name].poll() is None, cloud.log(name)
    admin.db.dispose()
