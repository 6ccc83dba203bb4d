"""Applies scoped to one change: they do what the change needs, proved from the instance's
and the public side, look at nothing else, and never remove what is outside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from core.linux import nft, nftelements
from core.linux.netlink import Netlink
from core.linux.operations import AddAddress, AddNatElement, DeleteAddress, DeleteNatElement
from core.linux.scope import Scope
from core.linux.secgroups import tables as sg
from core.store.schema import networks
from tests.host.conftest import Lab, in_ns, make_service
from tests.host.scenario import PUBLIC_CLIENT, NetworkHost, network_host


def _forbid_full_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scoped apply asks by name and key: listing every link, reading the whole nft
    table or walking /proc would make it cost what the host holds."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a scoped apply listed everything")

    monkeypatch.setattr(Netlink, "links", refuse)
    monkeypatch.setattr(nft, "read_owned", refuse)
    monkeypatch.setattr("core.linux.processes.find", refuse)


def _three_networks(host: NetworkHost) -> None:
    service = host.service
    service.create_networks("10.67.0.0/22", 3, 256)
    for name in ("alpha", "beta", "gamma"):
        service.create_project(name)
        service.launch_instance(name, f"{name}-vm1")
        # Security groups are enforced: the instances' test port is opened by a rule.
        service.add_security_group_rule(name, "default", "tcp", 8080, 8080)
    service.create_floating_range("nethost", "203.0.113.40-203.0.113.47")
    host.sync.sync()


def _junk(host: NetworkHost) -> None:
    """Drift a full apply would remove: a link marked as netcon's that no network wants,
    and a floating address no floating IP is associated with."""
    in_ns(host.ns, "ip", "link", "add", "brjunk", "type", "bridge")
    in_ns(host.ns, "ip", "link", "set", "brjunk", "alias", "netcon")
    in_ns(host.ns, "ip", "link", "set", "brjunk", "up")
    in_ns(host.ns, "ip", "addr", "add", "203.0.113.47/32", "dev", "pub0", "label", "netcon-fip")


JUNK_REMOVAL = ["delete address 203.0.113.47/32 from pub0", "delete link brjunk"]


def test_changes_reach_the_host_scoped_and_only_them(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = network_host(lab, tmp_path)
    _three_networks(host)
    _junk(host)
    before = host.layer.observe()
    service = make_service(lab, netns=host.ns, auto_apply=True)
    _forbid_full_reads(monkeypatch)

    # A launch: that network's hosts file and its dnsmasq, nothing else.
    vm = service.launch_instance("beta", "beta-vm2").addresses[0]
    monkeypatch.undo()
    after = host.layer.observe()
    assert {b: s.pid for b, s in after.dnsmasq.items()} == {
        b: s.pid for b, s in before.dnsmasq.items()
    }
    assert after.dnsmasq["br101"].hosts_text is not None
    assert vm.mac in after.dnsmasq["br101"].hosts_text
    assert {n: k.index for n, k in after.links.items()} == {
        n: k.index for n, k in before.links.items()
    }
    assert host.sync.plan().describe() == JUNK_REMOVAL
    guest = host.instance("beta2", vm.mac, "br101")
    assert lab.dhcp_client(guest) == vm.address

    # A floating IP: its address and NAT pair, proved from the public side.
    _forbid_full_reads(monkeypatch)
    address = service.allocate_floating_ip("beta").address
    service.associate_floating_ip(address, "beta-vm2")
    monkeypatch.undo()
    assert host.sync.plan().describe() == JUNK_REMOVAL
    lab.echo_server(guest, "0.0.0.0", 8080)
    lab.echo_server(host.public, PUBLIC_CLIENT, 8081)
    assert lab.fetch(host.public, f"http://{address}:8080/") == PUBLIC_CLIENT
    assert lab.fetch(guest, f"http://{PUBLIC_CLIENT}:8081/") == address

    # Moved to another instance of the project: the old pair goes, the new one comes.
    other = service.launch_instance("beta", "beta-vm3").addresses[0]
    _forbid_full_reads(monkeypatch)
    service.disassociate_floating_ip(address)
    service.associate_floating_ip(address, "beta-vm3")
    monkeypatch.undo()
    state = nft.Nft("nft", host.ns).observe()
    assert state.dnat == {address: other.address} and state.snat == {other.address: address}
    assert lab.fetch(host.public, f"http://{address}:8080/") is None
    assert host.sync.plan().describe() == JUNK_REMOVAL

    # Terminated: its NAT goes with it, and the public side no longer gets anywhere. Its
    # network's hosts file loses its line, read at its address alone.
    _forbid_full_reads(monkeypatch)
    service.terminate_instance("beta-vm3")
    monkeypatch.undo()
    hosts = host.layer.observe().dnsmasq["br101"].hosts_text
    assert hosts is not None and other.mac not in hosts and vm.mac in hosts
    assert nft.Nft("nft", host.ns).observe().dnat == {}
    assert host.sync.plan().describe() == JUNK_REMOVAL
    assert "brjunk" in host.layer.observe().links


def test_a_scoped_apply_is_idempotent(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    _three_networks(host)
    service = host.service
    service.launch_instance("gamma", "gamma-vm2")
    address = service.allocate_floating_ip("gamma").address
    service.associate_floating_ip(address, "gamma-vm2")
    gamma = next(n.id for n in service.list_networks() if n.project == "gamma")
    scope = Scope(frozenset({gamma}), frozenset({address}))
    first = host.sync.sync(scope=scope).operations
    assert AddAddress("pub0", address, 32, None, "netcon-fip") in first
    assert any(isinstance(op, AddNatElement) for op in first)
    assert host.sync.sync(scope=scope).operations == ()
    assert host.sync.plan().operations == ()

    service.disassociate_floating_ip(address)
    gone = host.sync.sync(scope=Scope(floating=frozenset({address}))).operations
    assert DeleteAddress("pub0", address, 32) in gone
    assert any(isinstance(op, DeleteNatElement) for op in gone)
    assert host.sync.plan().operations == ()


def test_a_network_that_left_is_taken_down_by_its_scope(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    _three_networks(host)
    service = host.service
    beta = next(n for n in service.list_networks() if n.project == "beta")
    gamma = next(n for n in service.list_networks() if n.project == "gamma")

    # beta's network is given to another network host; its instance stays here, so this
    # host keeps only the bridge and segment that instance needs.
    with service.db.write() as connection:
        connection.execute(
            update(networks).where(networks.c.id == beta.id).values(host="otherhost")
        )
    taken = host.sync.sync(scope=Scope(frozenset({beta.id}))).describe()
    assert "delete address 10.67.1.1/24 from br101" in taken
    assert "stop dnsmasq for br101" in " ".join(taken)
    assert "remove 10.67.1.0/24 from nftables set fixed_nets" in taken
    assert not [line for line in taken if "br100" in line or "br102" in line]
    assert {"br101", "vx101"} <= set(host.layer.observe().links)
    assert host.sync.plan().operations == ()

    # gamma's project goes: its network is released to the pool but stays on this host.
    service.terminate_instance("gamma-vm1")
    service.delete_project("gamma")
    emptied = host.sync.sync(scope=Scope(frozenset({gamma.id}))).describe()
    assert "write dnsmasq hosts file for br102 (0 host(s))" in emptied
    assert host.sync.plan().operations == ()
    # Deleted outright, it names nothing any more: the full comparison takes it down.
    service.delete_network(gamma.cidr)
    done = host.sync.sync(scope=Scope(frozenset({gamma.id}))).describe()
    assert "delete link br102" in done and "delete link vx102" in done
    assert host.sync.plan().operations == ()


def test_element_lookups_agree_with_the_whole_table(lab: Lab) -> None:
    ns = lab.netns("nft")
    table = nft.Nft("nft", ns)
    nets = ["10.68.0.0/24", "10.68.1.0/24", "10.68.4.0/23", "10.68.8.0/24"]
    pairs = [("203.0.113.50", "10.68.0.5"), ("203.0.113.51", "10.68.1.5")]
    commands = nft.table_commands(False)
    commands += [
        nft.element_command("add", nft.NET_SET, [nft.net_element(c) for c in nets]),
        nft.element_command("add", "isolated", ["br1", "br2"]),
        nft.element_command("add", nft.PAIR_SET, [{"concat": ["br1", "br1"]}]),
        nft.element_command("add", "public_ifs", ["pub0"]),
        nft.element_command("add", nft.DNAT_MAP, [[f, x] for f, x in pairs]),
        nft.element_command("add", nft.SNAT_MAP, [[x, f] for f, x in pairs]),
    ]
    table.run(commands)
    whole = table.observe()
    lookup = nftelements.Lookup(ns)
    try:
        asked = ["10.68.0.0/24", "10.68.1.0/24", "10.68.4.0/24", "10.68.4.0/23", "10.68.9.0/24"]
        seen = nftelements.scoped_state(
            lookup,
            interfaces=["pub0", "eth9"],
            bridges=["br1", "br2", "br3"],
            cidrs=asked,
            floating=["203.0.113.50", "203.0.113.60"],
            fixed=["10.68.1.5"],
        )
    finally:
        lookup.close()
    assert seen is not None
    assert seen.sets["public_ifs"] == {"pub0"}
    assert seen.sets["isolated"] == {"br1", "br2"}
    assert seen.sets[nft.PAIR_SET] == {"br1 . br1"}
    # Exactly the asked networks that are whole elements: not the half of a /23.
    assert seen.sets[nft.NET_SET] == set(asked) & whole.sets[nft.NET_SET]
    assert seen.sets[nft.NET_SET] == {"10.68.0.0/24", "10.68.1.0/24", "10.68.4.0/23"}
    # The pairs are followed both ways: both of them, whole.
    assert seen.dnat == whole.dnat and seen.snat == whole.snat

    in_ns(ns, "nft", "delete", "table", "ip", "netcon")
    lookup = nftelements.Lookup(ns)
    try:
        empty = nftelements.scoped_state(
            lookup, interfaces=[], bridges=[], cidrs=[], floating=[], fixed=[]
        )
    finally:
        lookup.close()
    assert empty is None  # no table: only a full apply can make it


def test_a_scoped_apply_on_a_compute_host_stops_no_dnsmasq_it_never_ran(
    lab: Lab, tmp_path: Path
) -> None:
    """A compute host holds its instances' bridges and segments, never a dnsmasq: a change
    to those networks (an evacuation of their network host, here) leaves it nothing to
    do, not a "stop dnsmasq" for every bridge the change names."""
    from core.service.hostsync import HostSync
    from core.store.schema import instances

    host = network_host(lab, tmp_path)
    service = host.service
    service.create_networks("10.68.0.0/23", 2, 256)
    for name in ("alpha", "beta"):
        service.create_project(name)
        service.launch_instance(name, f"{name}-vm1")
    host.sync.sync()
    compute = lab.netns("cmp")
    with service.db.write() as connection:
        connection.execute(update(instances).values(host="cmphost"))
    layer = HostSync(service, settings=service.settings.replace(host="cmphost", netns=compute))
    try:
        in_ns(compute, "ip", "link", "add", "und0", "type", "veth", "peer", "name", "und1")
        assert layer.sync().operations  # its bridges and segments
        assert layer.plan().operations == ()
        ids = frozenset(n.id for n in service.list_networks())
        for network in service.list_networks():
            service.modify_network(network.cidr, dns1="192.0.2.53")
        assert layer.plan(Scope(ids, frozenset())).operations == ()
    finally:
        layer.close()


def test_the_kernel_says_which_tables_exist_without_a_listing(lab: Lab) -> None:
    ns = lab.netns("tables")
    lookup = nftelements.Lookup(ns)
    try:
        assert lookup.tables_present(sg.TABLES) == {sg.BRIDGE: False, sg.GROUPS: False}
        nft.Nft("nft", ns).run(sg.create_table(sg.GROUPS, False))
        assert lookup.tables_present(sg.TABLES) == {sg.BRIDGE: False, sg.GROUPS: True}
    finally:
        lookup.close()
