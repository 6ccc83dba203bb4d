"""Launching and terminating instances under each manager."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update

from core.errors import Conflict, InvalidInput, NoMoreFixedIps, NoMoreNetworks, QuotaExceeded
from core.service import NetconService
from core.store.schema import networks
from tests.support import FIXED_TIME, make_service


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    return make_service(tmp_path, quota_fixed_ips=-1)


def test_first_vlan_launch_takes_a_network_and_a_host(service: NetconService) -> None:
    service.create_networks("10.0.0.0/16", 2, 256, 100, 1000)
    service.create_project("alpha")
    service.create_project("beta")
    vm = service.launch_instance("alpha", "vm1")
    assert vm.addresses[0].address == "10.0.0.3"
    assert re.fullmatch(r"fa:16:3e:[0-7][0-9a-f](:[0-9a-f]{2}){2}", vm.addresses[0].mac)
    assert vm.host == "nethost1" and vm.security_groups == ("default",)
    second = service.launch_instance("alpha", "vm2")
    assert second.addresses[0].address == "10.0.0.4"
    other = service.launch_instance("beta", "vm3")
    assert other.addresses[0].network == "10.0.1.0/24"
    nets = {n.cidr: n for n in service.list_networks()}
    assert nets["10.0.0.0/24"].project == "alpha" and nets["10.0.1.0/24"].project == "beta"
    service.create_project("gamma")
    with pytest.raises(NoMoreNetworks, match="gamma"):
        service.launch_instance("gamma", "vm4")
    assert [i.name for i in service.list_instances()] == ["vm1", "vm2", "vm3"]


def test_full_subnet_raises_a_clear_error(service: NetconService) -> None:
    service.create_networks("10.0.0.0/29", 1, 8, 100, 1000)
    service.create_project("alpha")
    names = [f"vm{i}" for i in range(4)]
    for name in names:
        service.launch_instance("alpha", name)
    with pytest.raises(
        NoMoreFixedIps, match=r"no more fixed IPs in network vlan100 \(10.0.0.0/29\)"
    ):
        service.launch_instance("alpha", "vm9")
    assert {i.name for i in service.list_instances()} == set(names)


def test_released_address_waits_for_its_lease(tmp_path: Path) -> None:
    now = [FIXED_TIME]
    service = make_service(tmp_path, quota_fixed_ips=-1, fixed_ip_disassociate_timeout=600)
    service.clock = lambda: now[0]
    service.create_networks("10.0.0.0/29", 1, 8, 100, 1000)
    service.create_project("alpha")
    for name in ("a", "b", "c", "d"):
        service.launch_instance("alpha", name)
    a = service.get_instance("a").instance.addresses[0]
    assert service.dhcp_event("add", a.mac, a.address, "a") is True
    assert service.dhcp_event("old", a.mac, a.address, "a") is False
    service.terminate_instance("a")
    # Still leased: handing it out now would give two machines one address.
    with pytest.raises(NoMoreFixedIps):
        service.launch_instance("alpha", "e")
    assert service.dhcp_event("del", a.mac, a.address) is True
    assert service.launch_instance("alpha", "e").addresses[0].address == a.address
    # A lease that never goes away is taken back after the timeout.
    e = service.get_instance("e").instance.addresses[0]
    service.dhcp_event("add", e.mac, e.address)
    service.terminate_instance("e")
    with pytest.raises(NoMoreFixedIps):
        service.launch_instance("alpha", "f")
    now[0] = FIXED_TIME + timedelta(seconds=601)
    assert service.launch_instance("alpha", "f").addresses[0].address == e.address


def test_never_leased_address_is_free_at_once(service: NetconService) -> None:
    service.create_networks("10.0.0.0/29", 1, 8, 100, 1000)
    service.create_project("alpha")
    first = service.launch_instance("alpha", "a").addresses[0].address
    service.terminate_instance("a")
    assert service.launch_instance("alpha", "b").addresses[0].address == first


def test_stale_dhcp_event_for_another_mac_changes_nothing(service: NetconService) -> None:
    service.create_networks("10.0.0.0/29", 1, 8, 100, 1000)
    service.create_project("alpha")
    vm = service.launch_instance("alpha", "a").addresses[0]
    before = len(service.list_audit())
    assert service.dhcp_event("add", "fa:16:3e:00:00:01", vm.address) is False
    assert len(service.list_audit()) == before
    with pytest.raises(InvalidInput, match="action"):
        service.dhcp_event("bogus", vm.mac, vm.address)


def test_flat_instances_get_injected_configuration(service: NetconService) -> None:
    service.create_networks("192.168.7.0/24", manager="flat", bridge="brflat", dns="192.0.2.53")
    service.create_project("legacy", manager="flat")
    service.launch_instance("legacy", "mail1")
    detail = service.get_instance("mail1")
    address = detail.instance.addresses[0]
    assert detail.injected is not None
    stanza = detail.injected.interfaces
    assert "iface eth0 inet static" in stanza and f"address {address.address}" in stanza
    assert "gateway 192.168.7.1" in stanza and "dns-nameservers 192.0.2.53" in stanza
    document = yaml.safe_load(detail.injected.cloud_init)
    eth0 = document["ethernets"]["eth0"]
    assert document["version"] == 2
    assert eth0["match"]["macaddress"] == address.mac
    assert eth0["addresses"] == [f"{address.address}/24"]
    assert eth0["routes"] == [{"to": "default", "via": "192.168.7.1"}]
    assert eth0["nameservers"]["addresses"] == ["192.0.2.53"]
    # Flat has no DHCP: a released address is free at once even if marked leased.
    service.terminate_instance("mail1")
    assert service.launch_instance("legacy", "mail2").addresses[0].address == address.address


def test_dhcp_managers_do_not_inject(service: NetconService) -> None:
    service.create_networks("10.10.0.0/24", manager="flatdhcp", bridge="brdhcp")
    service.create_project("ops", manager="flatdhcp")
    service.launch_instance("ops", "mon1")
    assert service.get_instance("mon1").injected is None


def test_missing_network_for_manager_is_explained(service: NetconService) -> None:
    service.create_project("ops", manager="flatdhcp")
    with pytest.raises(Conflict, match="no flatdhcp network"):
        service.launch_instance("ops", "mon1")
    assert service.list_instances() == []


def test_quota_and_names(tmp_path: Path) -> None:
    service = make_service(tmp_path, quota_fixed_ips=2)
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.create_project("alpha")
    service.launch_instance("alpha", "a")
    service.launch_instance("alpha", "b")
    with pytest.raises(QuotaExceeded, match="quota_fixed_ips"):
        service.launch_instance("alpha", "c")
    with pytest.raises(Conflict, match="already exists"):
        service.launch_instance("alpha", "a")
    with pytest.raises(InvalidInput, match="security_group"):
        service.launch_instance("alpha", "d", ["nope"])
    for bad in ("-a", "a b", "a,b", "a$b", "a'b", "a\nb", "x" * 64, ""):
        with pytest.raises(InvalidInput):
            service.launch_instance("alpha", bad)


def test_terminate_disassociates_floating_but_keeps_it(service: NetconService) -> None:
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.create_project("alpha")
    service.launch_instance("alpha", "web")
    service.create_floating_range("nethost1", "203.0.113.0/30")
    floating = service.allocate_floating_ip("alpha")
    service.associate_floating_ip(floating.address, "web")
    service.terminate_instance("web")
    after = service.get_floating_ip(floating.address)
    assert after.project == "alpha" and after.instance is None


def test_project_lifecycle(service: NetconService) -> None:
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.create_project("alpha")
    with pytest.raises(Conflict, match="already exists"):
        service.create_project("alpha")
    service.launch_instance("alpha", "a")
    with pytest.raises(Conflict, match="instance"):
        service.delete_project("alpha")
    service.terminate_instance("a")
    with service.db.write() as connection:
        connection.execute(update(networks).values(vpn_enabled=True))
    service.delete_project("alpha")
    assert service.list_projects() == []
    # The VLAN network went back to the pool, without the old project's VPN.
    assert service.list_networks()[0].project is None
    with service.db.read() as connection:
        assert connection.execute(select(networks.c.vpn_enabled)).scalar_one() is False


def test_network_host_is_the_least_loaded_live_host(service: NetconService) -> None:
    service.create_networks("10.0.0.0/16", 3, 256, 100, 1000)
    for name in ("alpha", "beta", "gamma"):
        service.create_project(name)
    # No live host: this host takes the network.
    service.launch_instance("alpha", "a1")
    service.heartbeat("nethost1")
    service.heartbeat("nethost2")
    # nethost2 carries nothing yet, so it gets the next network, then they are even.
    service.launch_instance("beta", "b1")
    service.launch_instance("gamma", "g1")
    hosts = {n.project: n.host for n in service.list_networks() if n.project}
    assert hosts == {"alpha": "nethost1", "beta": "nethost2", "gamma": "nethost1"}
    listed = {h.name: (h.alive, h.networks) for h in service.list_hosts()}
    assert listed == {"nethost1": (True, 2), "nethost2": (True, 1)}


def test_flat_launch_moves_on_to_the_next_network_with_room(service: NetconService) -> None:
    service.create_networks("10.30.0.0/30", 1, 4, manager="flatdhcp", bridge="brone", label="one")
    service.create_networks("10.31.0.0/30", 1, 4, manager="flatdhcp", bridge="brtwo", label="two")
    service.create_project("ops", manager="flatdhcp")
    assert service.launch_instance("ops", "a").addresses[0].address == "10.30.0.2"
    assert service.launch_instance("ops", "b").addresses[0].address == "10.31.0.2"
    with pytest.raises(NoMoreFixedIps, match=r"network two \(10.31.0.0/30\)"):
        service.launch_instance("ops", "c")


def test_spooled_lease_events_are_recorded_in_order_and_taken_once(tmp_path: Path) -> None:
    """What a lease script could not tell the database (a dnsmasq in a namespace) is
    recorded by the next apply: in order, each as its event would have been, and a line
    that no longer names a fixed IP is left out."""
    from core.linux import dnsmasq
    from core.store.leases import record_spooled
    from core.store.raw import RawDatabase

    service = make_service(tmp_path)
    service.create_networks("10.0.0.0/29", 1, 8, 100, 1000)
    service.create_project("alpha")
    a = service.launch_instance("alpha", "a").addresses[0]
    b = service.launch_instance("alpha", "b").addresses[0]
    spool = tmp_path / dnsmasq.SPOOL
    spool.write_text(
        f"add {a.mac} {a.address}\nold {b.mac} {b.address}\ndel {b.mac} {b.address}\n"
        f"add {a.mac} 192.0.2.9\nnonsense\n"
    )
    lines = dnsmasq.take_spooled(tmp_path)
    assert not spool.exists() and len(lines) == 5
    # Appended meanwhile: left for the next look, which also gets what this one could not
    # record (it is forgotten only once recorded).
    spool.write_text(f"old {a.mac} {a.address}\n")
    database = RawDatabase(service.db.url)
    try:
        assert record_spooled(database, lines, "dnsmasq", FIXED_TIME) == [1, 1, 1]
    finally:
        database.close()
    assert dnsmasq.take_spooled(tmp_path) == [*lines, f"old {a.mac} {a.address}"]
    dnsmasq.forget_spooled(tmp_path)
    assert dnsmasq.take_spooled(tmp_path) == []
    leased = {f.address: f.leased for f in service.list_fixed_ips(search="10.0.0.").rows}
    assert leased[a.address] and not leased[b.address]
