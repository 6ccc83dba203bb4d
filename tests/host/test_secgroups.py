"""Security groups for real: probes from guests, the network host and the public side;
spoofed frames; memberships that change without a rebuild; explain against packets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from core.linux.secgroups import tables as filter_tables
from core.linux.secgroups.operations import (
    AddMember,
    AddRuleElement,
    ChangePortFilter,
    CreateCombination,
    CreateFilterTable,
    CreateGroupFilter,
    DeleteCombination,
    RemoveMember,
    is_filter_operation,
)
from core.linux.secgroups.state import read_table
from core.linux.secgroups.whole import CreateWholeFilter
from core.store.schema import security_group_rules
from core.views import AddressView
from tests.host.conftest import Lab, in_ns
from tests.host.probes import Recorder, probe, send_arp_reply, send_udp, serve
from tests.host.scenario import PUBLIC_CLIENT, NetworkHost, network_host

TCP = [22, 23, 80, 5432, 8080]
UDP = [53, 5353]
FLOATING = "203.0.113.10"


@dataclass
class Guest:
    ns: str
    vm: AddressView


def _cloud(lab: Lab, tmp_path: Path, cidr: str = "10.91.0.0/24") -> NetworkHost:
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    host.service.create_networks(cidr, 1, 256)
    return host


def _guest(host: NetworkHost, name: str, groups: list[str], project: str = "alpha") -> Guest:
    vm = host.service.launch_instance(project, name, groups).addresses[0]
    host.sync.sync()
    bridges = {n.cidr: n.bridge for n in host.service.list_networks()}
    ns = host.instance(name, vm.mac, bridges[vm.network])
    # DHCP from the network's dnsmasq crosses the filter both ways.
    assert host.lab.dhcp_client(ns) == vm.address
    return Guest(ns, vm)


def _open(ns: str, address: str) -> dict[str, bool]:
    cases = [("tcp", address, p) for p in TCP] + [("udp", address, p) for p in UDP]
    cases.append(("icmp", address, 8))
    results = probe(ns, cases)
    return {f"{c[0]} {c[2]}": ok for c, ok in zip(cases, results, strict=True)}


def _only(opened: dict[str, bool], *allowed: str) -> None:
    assert {k for k, ok in opened.items() if ok} == set(allowed), opened


def test_rules_open_their_ports_and_nothing_else(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path)
    service = host.service
    service.create_security_group("alpha", "web")
    client = _guest(host, "client", ["default"])
    web = _guest(host, "web", ["web"])
    serve(lab, web.ns, web.vm.address, TCP, UDP)
    # The web group has no rule yet: nothing gets in, from a guest or the network host.
    _only(_open(client.ns, web.vm.address))
    _only(_open(host.ns, web.vm.address))

    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    service.add_security_group_rule("alpha", "web", "tcp", 22, 22, cidr=f"{client.vm.address}/32")
    service.add_security_group_rule("alpha", "web", "udp", 53, 53, cidr="10.91.0.128/25")
    service.add_security_group_rule("alpha", "web", "icmp", 8, -1, cidr="10.91.0.0/26")
    change = host.sync.sync().operations
    # Four rules are four elements of the group's sets; nothing else changes.
    assert [type(op) for op in change] == [AddRuleElement] * 4
    _only(_open(client.ns, web.vm.address), "tcp 80", "tcp 22", "icmp 8")
    # The gateway (10.91.0.1) is in 10.91.0.0/26 but is not the client's /32.
    _only(_open(host.ns, web.vm.address), "tcp 80", "icmp 8")
    # The guest's own connections out are not limited, and their replies come back.
    serve(lab, client.ns, client.vm.address, [8080], [])
    assert probe(web.ns, [("tcp", client.vm.address, 8080)]) == [False]
    service.add_security_group_rule("alpha", "default", "tcp", 8080, 8080)
    host.sync.sync()
    assert probe(web.ns, [("tcp", client.vm.address, 8080)]) == [True]

    (rule,) = [r for r in service.instance_ingress("web").rules if r.from_port == 80]
    service.remove_security_group_rule(rule.id)
    host.sync.sync()
    _only(_open(client.ns, web.vm.address), "tcp 22", "icmp 8")
    assert host.sync.plan().operations == ()


def test_source_group_follows_membership_without_a_rebuild(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path, "10.92.0.0/24")
    service = host.service
    service.create_security_group("alpha", "db")
    service.create_security_group("alpha", "app")
    service.add_security_group_rule("alpha", "db", "tcp", 5432, 5432, source_group="app")
    db = _guest(host, "db", ["db"])
    client = _guest(host, "client", ["default"])
    serve(lab, db.ns, db.vm.address, TCP, UDP)
    _only(_open(client.ns, db.vm.address))

    service.add_instance_security_group("client", "app")
    joined = host.sync.sync().operations
    # Joining is elements (a member, the port's map entry) plus the chains new to this
    # host (app's empty filter, the port's new combination of groups, the old one gone):
    # no table is rebuilt and db's filter, which holds the rule, is not touched.
    kinds = {type(op) for op in joined}
    assert AddMember in kinds and ChangePortFilter in kinds
    assert kinds <= {
        AddMember,
        ChangePortFilter,
        CreateCombination,
        DeleteCombination,
        CreateGroupFilter,
    }
    assert [op.label for op in joined if isinstance(op, CreateGroupFilter)] == ["alpha/app"]
    _only(_open(client.ns, db.vm.address), "tcp 5432")

    service.remove_instance_security_group("client", "app")
    left = host.sync.sync().operations
    assert RemoveMember in {type(op) for op in left}
    assert all(is_filter_operation(op) and not isinstance(op, CreateFilterTable) for op in left)
    _only(_open(client.ns, db.vm.address))
    assert host.sync.plan().operations == ()


def test_spoofed_addresses_and_arp_are_dropped(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path, "10.93.0.0/24")
    service = host.service
    service.add_security_group_rule("alpha", "default", "udp", 9999, 9999)
    observer = _guest(host, "obs", ["default"])
    attacker = _guest(host, "atk", ["default"])
    victim = _guest(host, "vic", ["default"])
    seen = Recorder(lab, observer.ns, "eth0", tmp_path / "seen.txt")
    me, peer = attacker.vm, observer.vm
    send_udp(attacker.ns, me.mac, peer.mac, me.address, peer.address, 9999, "legit")
    send_udp(attacker.ns, me.mac, peer.mac, victim.vm.address, peer.address, 9999, "spoofed-ip")
    send_udp(attacker.ns, me.mac, peer.mac, "10.93.0.250", peer.address, 9999, "unknown-ip")
    send_udp(attacker.ns, "fa:16:3e:7f:00:01", peer.mac, me.address, peer.address, 9999, "mac")
    broadcast = "ff:ff:ff:ff:ff:ff"
    # "The victim's address is at my MAC": an ARP poisoning attempt, and an honest one.
    send_arp_reply(attacker.ns, me.mac, broadcast, me.mac, victim.vm.address, peer.address)
    send_arp_reply(attacker.ns, "fa:16:3e:7f:00:02", broadcast, me.mac, me.address, peer.address)
    send_arp_reply(attacker.ns, me.mac, broadcast, "fa:16:3e:7f:00:03", me.address, peer.address)
    send_arp_reply(attacker.ns, me.mac, broadcast, me.mac, me.address, peer.address)
    lines = seen.lines()
    udp = [line for line in lines if line.startswith("udp ")]
    assert udp == [f"udp {me.mac} {me.address} legit"], lines
    honest = f"arp {me.mac} {me.mac} {me.address}"
    arp = [line for line in lines if line.startswith(f"arp {me.mac}") or "7f:00" in line]
    assert honest in arp and all(line == honest for line in arp), arp
    # The network host never learnt the victim's address at the attacker's MAC.
    neighbours = in_ns(host.ns, "ip", "neigh", "show", victim.vm.address).stdout
    assert me.mac not in neighbours


def test_floating_ip_and_projects_obey_groups(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_networks("10.94.0.0/16", 2, 256)
    for project in ("alpha", "beta"):
        service.create_project(project)
    service.create_floating_range("nethost", f"{FLOATING}-203.0.113.11")
    web = _guest(host, "web", ["default"])
    other = _guest(host, "other", ["default"], project="beta")
    serve(lab, web.ns, web.vm.address, TCP, UDP)
    serve(lab, other.ns, other.vm.address, TCP, UDP)
    address = service.allocate_floating_ip("alpha").address
    service.associate_floating_ip(address, "web")
    host.sync.sync()
    # From the public side only what a rule allows for the public address gets in.
    _only(_open(host.public, address))
    service.add_security_group_rule("alpha", "default", "tcp", 80, 80, cidr="203.0.113.0/24")
    service.add_security_group_rule("alpha", "default", "tcp", 22, 22, cidr="198.51.100.0/24")
    host.sync.sync()
    _only(_open(host.public, address), "tcp 80")
    assert probe(host.public, [("tcp", address, 80)]) == [True]
    # beta lets in anything from anywhere; alpha's instance still cannot reach it, as
    # projects stay isolated whatever their groups say. The public side can.
    service.add_security_group_rule("beta", "default", "any", cidr="0.0.0.0/0")
    host.sync.sync()
    _only(_open(web.ns, other.vm.address))
    beta_floating = service.allocate_floating_ip("beta").address
    service.associate_floating_ip(beta_floating, "other")
    host.sync.sync()
    assert probe(host.public, [("tcp", beta_floating, 23)]) == [True]
    assert probe(web.ns, [("tcp", PUBLIC_CLIENT, 1)]) == [False]
    assert host.sync.plan().operations == ()


def test_kill_during_apply_converges(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path, "10.95.0.0/24")
    service = host.service
    service.create_security_group("alpha", "web")
    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    service.launch_instance("alpha", "web", ["web"])
    # An nft that stalls before loading its batch, so the kill lands mid-apply: after the
    # links are made, before any table is.
    slow = tmp_path / "slow-nft"
    slow.write_text('#!/bin/sh\ncase "$*" in *-f*) sleep 30;; esac\nexec nft "$@"\n')
    slow.chmod(0o755)
    settings = {
        "host": "nethost",
        "state_dir": str(lab.state_dir),
        "public_interface": "pub0",
        "vlan_interface": "und0",
        "segmentation": "vxlan",
        "nft_binary": str(slow),
    }
    (tmp_path / "netcon").mkdir()
    (tmp_path / "netcon" / "netcon.toml").write_text(
        "".join(f'{key} = "{value}"\n' for key, value in settings.items())
    )
    env = {
        **os.environ,
        "NETCON_DATABASE_URL": service.db.url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    apply = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "host", "apply", "--netns", host.ns],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while "br100" not in host.layer.observe().links and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(apply.pid, signal.SIGKILL)
    apply.wait()
    assert not read_table("nft", host.ns, filter_tables.GROUPS).exists
    # The next apply finishes the job, and the one after has nothing left to do.
    done = host.sync.sync().operations
    # Neither table was made: the whole filter is written in one pass.
    assert any(isinstance(op, CreateFilterTable | CreateWholeFilter) for op in done)
    assert host.sync.plan().operations == ()
    vm = service.get_instance("web").instance.addresses[0]
    web = host.instance("web", vm.mac, "br100")
    assert lab.dhcp_client(web) == vm.address
    serve(lab, web, vm.address, [80, 81], [])
    assert probe(host.ns, [("tcp", vm.address, 80), ("tcp", vm.address, 81)]) == [True, False]


def test_explain_agrees_with_packets(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path, "10.96.0.0/24")
    service = host.service
    service.create_security_group("alpha", "web")
    service.create_security_group("alpha", "ops")
    service.create_floating_range("nethost", f"{FLOATING}-203.0.113.11")
    admin = _guest(host, "admin", ["ops"])
    peer = _guest(host, "peer", ["default"])
    web = _guest(host, "web", ["web", "default"])
    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    service.add_security_group_rule("alpha", "web", "tcp", 22, 23, source_group="ops")
    service.add_security_group_rule("alpha", "web", "udp", 53, 53, cidr="10.96.0.0/24")
    service.add_security_group_rule("alpha", "web", "icmp", 8, -1, cidr="203.0.113.0/24")
    floating = service.allocate_floating_ip("alpha").address
    service.associate_floating_ip(floating, "web")
    host.sync.sync()
    serve(lab, web.ns, web.vm.address, TCP, UDP)
    sources = {
        admin.ns: (admin.vm.address, web.vm.address),
        peer.ns: (peer.vm.address, web.vm.address),
        host.ns: ("10.96.0.1", web.vm.address),
        host.public: (PUBLIC_CLIENT, floating),
    }
    checked = 0
    for ns, (source, target) in sources.items():
        cases = [("tcp", p) for p in TCP] + [("udp", p) for p in UDP] + [("icmp", 8)]
        real = probe(ns, [(protocol, target, port) for protocol, port in cases])
        for (protocol, port), reached in zip(cases, real, strict=True):
            if protocol == "icmp":
                answer = service.explain_ingress("web", source, "icmp", icmp_type=port)
            else:
                answer = service.explain_ingress("web", source, protocol, port)
            assert answer.allowed == reached, (ns, protocol, port, answer)
            checked += 1
    assert checked == len(sources) * (len(TCP) + len(UDP) + 1)
    # The answers name what decides.
    said = service.explain_ingress("web", admin.vm.address, "tcp", 23)
    assert (
        said.allowed
        and said.decided_by.startswith("rule #")
        and "members of ops" in said.decided_by
    )
    refused = service.explain_ingress("web", PUBLIC_CLIENT, "tcp", 22)
    assert not refused.allowed and refused.decided_by.startswith("default deny")


def test_overlapping_rules_from_before_the_check_still_hold(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path, "10.97.0.0/24")
    service = host.service
    client = _guest(host, "client", ["default"])
    service.create_security_group("alpha", "web")
    web = _guest(host, "web", ["web"])
    (group,) = [g for g in service.list_security_groups("alpha") if g.name == "web"]
    # The service refuses overlapping rules now; a database may hold some from before.
    with service.db.write() as connection:
        for low, high, cidr in ((20, 30, "10.97.0.0/24"), (25, 35, f"{client.vm.address}/32")):
            connection.execute(
                insert(security_group_rules).values(
                    group_id=group.id, protocol="tcp", from_port=low, to_port=high, cidr=cidr
                )
            )
    host.sync.sync()
    assert host.sync.plan().operations == ()
    serve(lab, web.ns, web.vm.address, [22, 33, 40], [])
    checks = [("tcp", web.vm.address, port) for port in (22, 33, 40)]
    assert probe(client.ns, checks) == [True, True, False]
