"""HostSync, the one way a host catches up: an agent applies a change as narrowly as the
command's own apply would, and records exactly what it carried out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.agent import Agent
from core.linux.operations import Plan
from core.linux.ports import port_name
from core.linux.scope import Scope
from core.linux.secgroups.operations import AddRuleElement, FilterOperation
from core.service.hostsync import HostSync
from core.service.owed import Owed
from tests.host.conftest import Lab, in_ns
from tests.host.probes import probe, serve
from tests.host.scenario import NetworkHost, network_host
from tests.host.test_cli import REPO

# Generous: the agent wakes within a fraction of a second of a commit.
WAIT = 20.0
# What the agent under test said, line by line.
said: list[str] = []


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT:g} s: {what}")
        time.sleep(0.05)


class Recorded:
    """Every apply the agent's HostSync made: the scope it planned (None: the whole
    host) and the plan it carried out."""

    def __init__(self, sync: HostSync) -> None:
        self.applies: list[tuple[Scope | None, Plan]] = []
        original = sync._apply

        def recording(
            owed: Owed, scope: Scope | None, lock_timeout: float | None, on_wait: object
        ) -> Plan:
            done = original(owed, scope, lock_timeout, on_wait)  # type: ignore[arg-type]
            self.applies.append((scope, done))
            return done

        sync._apply = recording  # type: ignore[method-assign]


@pytest.fixture
def agent_host(lab: Lab, tmp_path: Path) -> Iterator[tuple[NetworkHost, Agent, Recorded]]:
    said.clear()
    host = network_host(lab, tmp_path)
    agent = Agent(host.service, "nethost", host.ns, resync=3600, on_apply=said.append)
    recorded = Recorded(agent.sync)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield host, agent, recorded
    finally:
        stop.set()
        thread.join(timeout=30)


def test_an_agent_applies_a_rule_change_to_that_groups_elements_only(
    lab: Lab, agent_host: tuple[NetworkHost, Agent, Recorded]
) -> None:
    host, _, recorded = agent_host
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.94.0.0/24", 1, 256)
    service.create_security_group("alpha", "web")
    service.create_security_group("alpha", "db")
    web = service.launch_instance("alpha", "web1", ["web"]).addresses[0]
    service.launch_instance("alpha", "db1", ["db"])
    service.add_security_group_rule("alpha", "db", "tcp", 5432, 5432)
    _until(lambda: service.pending_for("nethost").changes == (), "the host caught up")
    guest = host.instance("web1", web.mac, "br100")
    assert lab.dhcp_client(guest) == web.address
    serve(lab, guest, web.address, [80], [])
    assert probe(host.ns, [("tcp", web.address, 80)]) == [False]
    groups = {g.name: g.id for g in service.list_security_groups("alpha")}
    before = len(recorded.applies)

    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    _until(lambda: service.pending_for("nethost").changes == (), "the rule applied")

    (scope, done), *rest = recorded.applies[before:]
    assert rest == []
    # Planned as the change's scope (the filter at the group's keys), not the whole host.
    assert scope == Scope(security=True, filter_groups=frozenset({groups["web"]}))
    # One element of the web group's set: one nft command, nothing of any other group.
    assert [type(op) for op in done.operations] == [AddRuleElement]
    assert all(
        isinstance(op, FilterOperation) and op.group_id == groups["web"]  # type: ignore[attr-defined]
        for op in done.operations
    )
    assert sum(len(op.commands()) for op in done.operations) == 1  # type: ignore[attr-defined]
    assert probe(host.ns, [("tcp", web.address, 80)]) == [True]
    assert host.sync.plan().operations == ()


def _mtu(ns: str, ifname: str) -> int:
    return int(in_ns(ns, "cat", f"/sys/class/net/{ifname}/mtu").stdout)


def test_a_port_plugged_after_an_apply_gets_its_network_mtu_at_once(
    lab: Lab, agent_host: tuple[NetworkHost, Agent, Recorded]
) -> None:
    host, agent, _ = agent_host
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.96.0.0/24", 1, 256)
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    _until(lambda: service.pending_for("nethost").changes == (), "the host caught up")
    _until(lambda: agent.sync.desired is not None, "the agent applied")
    # VXLAN segments: the network's MTU is the underlay's less the VXLAN header.
    assert _mtu(host.ns, "br100") == 1450
    port = port_name(vm.mac)
    # Plugged as a compute side that knows nothing of MTUs would: at the kernel's 1500.
    guest = lab.netns("vm1")
    lab.veth(guest, "eth0", host.ns, port, mac_a=vm.mac)
    in_ns(host.ns, "ip", "link", "set", port, "master", "br100", "up")
    assert _mtu(guest, "eth0") == 1500
    _until(lambda: _mtu(host.ns, port) == 1450, "the port at its network's MTU")
    # Said once its apply is recorded, a moment after the kernel has the MTU.
    _until(
        lambda: any(line.startswith(f"port(s) {port} plugged") for line in said),
        "the agent said the port was plugged",
    )
    # Through the plan, so nothing is left for the next one.
    assert host.sync.plan().operations == ()


def test_a_restarted_agent_sets_up_ports_plugged_while_it_was_dead_and_after(
    lab: Lab, tmp_path: Path
) -> None:
    """`netcon agent` killed (no goodbye, SIGKILL) and started again: a port plugged
    meanwhile gets its MTU from the new agent's first apply, and one plugged after that
    from its watch of the bridges."""
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.95.0.0/24", 1, 256)
    vm1, vm2 = (service.launch_instance("alpha", name).addresses[0] for name in ("vm1", "vm2"))
    config = tmp_path / "agent-config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text(
        f'host = "nethost"\nstate_dir = "{lab.state_dir}"\npublic_interface = "pub0"\n'
        'vlan_interface = "und0"\nsegmentation = "vxlan"\n'
    )
    env = dict(
        os.environ,
        XDG_CONFIG_HOME=str(config.parent),
        PYTHONPATH=str(REPO),
        NETCON_DATABASE_URL=service.db.url,
    )
    log = tmp_path / "agent.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "core.cli", "agent", "--netns", host.ns],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def plug(name: str, mac: str) -> None:
        # As a compute side that knows nothing of MTUs plugs it: at the kernel's 1500.
        guest = lab.netns(name)
        lab.veth(guest, "eth0", host.ns, port_name(mac), mac_a=mac)
        in_ns(host.ns, "ip", "link", "set", port_name(mac), "master", "br100", "up")

    agent = start()
    try:
        _until(lambda: "applied change" in log.read_text(), "the agent's first apply")
        assert _mtu(host.ns, "br100") == 1450
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        plug("vm1", vm1.mac)
        assert _mtu(host.ns, port_name(vm1.mac)) == 1500  # nobody watching
        agent = start()
        _until(lambda: _mtu(host.ns, port_name(vm1.mac)) == 1450, "vm1's port at 1450")
        # Owing nothing, the restarted agent's first apply is said as a re-sync.
        _until(lambda: "re-sync applied what the host lacked" in log.read_text(), "said")
        plug("vm2", vm2.mac)
        _until(lambda: _mtu(host.ns, port_name(vm2.mac)) == 1450, "vm2's port at 1450")
        _until(lambda: f"port(s) {port_name(vm2.mac)} plugged" in log.read_text(), "said")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    assert host.sync.plan().operations == ()
