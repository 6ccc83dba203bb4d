"""What a guest is handed: network modify, project keys, user data, and what the metadata
service knows of an instance."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.service import NetconService
from core.service.demo import load_demo
from tests.support import make_service

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs1t0bK3dyzX0dNf8XX3bE0m0qBq2rVqv3pQqk6t5cN admin@example"
)


@pytest.fixture
def cloud(tmp_path: Path) -> NetconService:
    service = make_service(tmp_path)
    load_demo(service)
    service.heartbeat("nethost1")
    return service


def test_network_modify_changes_dns_mtu_and_lease_time(cloud: NetconService) -> None:
    network = cloud.list_networks()[0]
    assert network.mtu == 1500 and network.dns1 is None
    changed = cloud.modify_network(
        network.cidr, dns1="10.9.9.9", dns2="10.9.9.10", mtu=1400, dhcp_lease_time=600
    )
    assert (changed.dns1, changed.dns2, changed.mtu, changed.dhcp_lease_time) == (
        "10.9.9.9", "10.9.9.10", 1400, 600
    )  # fmt: skip
    back = cloud.modify_network(network.cidr, dns2=None, mtu=None)
    assert (back.dns2, back.mtu) == (None, 1500)
    assert cloud.last_change is not None and "nethost1" in cloud.last_change.hosts


def test_a_vxlan_network_defaults_to_the_physical_mtu_less_its_overhead(tmp_path: Path) -> None:
    service = make_service(tmp_path, segmentation="vxlan", physical_mtu=1500)
    (network,) = service.create_networks("10.80.0.0/24", 1, 256)
    assert network.mtu == 1450
    with pytest.raises(InvalidInput, match="mtu: 1451 is above 1450"):
        service.modify_network(network.id, mtu=1451)


@pytest.mark.parametrize(
    ("options", "field", "rule"),
    [
        ({"dns1": "dns.example"}, "dns1", "not an IPv4 address"),
        ({"mtu": 575}, "mtu", "below 576"),
        ({"mtu": 9000}, "mtu", "above 1500"),
        ({"dhcp_lease_time": 5}, "dhcp_lease_time", "outside"),
        ({"host": "nobody"}, "host", "no network host named"),
        ({"project": "beta"}, "network", "still has 3 instance"),
        ({"disassociate_project": True}, "network", "still has"),
        ({}, "network modify", "nothing to change"),
    ],
)
def test_network_modify_refuses_what_would_break(
    cloud: NetconService, options: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises((InvalidInput, Conflict, NotFound), match=f"{field}: .*{rule}"):
        cloud.modify_network("10.0.0.0/24", **options)  # type: ignore[arg-type]


def test_a_project_takes_a_free_vlan_network_only_if_it_has_none(cloud: NetconService) -> None:
    with pytest.raises(Conflict, match="project: alpha already has VLAN network 10.0.0.0/24"):
        cloud.modify_network("10.0.3.0/24", project="alpha")
    cloud.create_project("delta")
    assert cloud.modify_network("10.0.3.0/24", project="delta").project == "delta"
    with pytest.raises(Conflict, match="shared by every project"):
        cloud.modify_network("10.10.0.0/24", project="delta")


def test_network_modify_refuses_a_down_host(cloud: NetconService) -> None:
    cloud.heartbeat("h2")
    cloud.clock = lambda: __import__("datetime").datetime(2027, 1, 1)
    with pytest.raises(Conflict, match="host: h2 is down"):
        cloud.modify_network("10.0.3.0/24", host="h2")


def test_network_modify_moves_a_network_and_its_floating_ips(cloud: NetconService) -> None:
    cloud.heartbeat("nethost2")
    moved = cloud.modify_network("10.0.0.0/24", host="nethost2")
    assert moved.host == "nethost2"
    assert cloud.get_floating_ip("203.0.113.1").host == "nethost2"
    assert cloud.last_change is not None
    assert {"nethost1", "nethost2"} <= cloud.last_change.hosts


def test_keys_are_added_listed_used_and_deleted(cloud: NetconService) -> None:
    key = cloud.add_key("alpha", "admin", ED25519 + "\n")
    assert key.fingerprint.startswith("SHA256:") and key.public_key == ED25519
    cloud.launch_instance("alpha", "keyed", key="admin", user_data=b"#cloud-config\n")
    assert [k.instances for k in cloud.list_keys("alpha")] == [1]
    with pytest.raises(Conflict, match="is the key of 1 instance"):
        cloud.delete_key("alpha", "admin")
    with pytest.raises(NotFound, match="key: alpha has no key named 'other'"):
        cloud.launch_instance("alpha", "keyed2", key="other")
    cloud.terminate_instance("keyed")
    assert cloud.delete_key("alpha", "admin").name == "admin"


@pytest.mark.parametrize(
    "text",
    ["", "ssh-rsa", "ssh-ed25519 notbase64!!", "ssh-ed25519 AAAA", "-----BEGIN PRIVATE KEY-----"],
)
def test_a_key_that_is_not_a_public_key_is_refused(cloud: NetconService, text: str) -> None:
    with pytest.raises(InvalidInput, match="public_key"):
        cloud.add_key("alpha", "bad", text)


@pytest.mark.parametrize(
    ("data", "rule"),
    [(b"x" * (64 * 1024 + 1), "at most 65536"), (b"\xff\xfe\x00binary", "UTF-8 text or gzip")],
)
def test_user_data_must_be_small_text_or_gzip(cloud: NetconService, data: bytes, rule: str) -> None:
    with pytest.raises(InvalidInput, match=f"user_data: .*{rule}"):
        cloud.launch_instance("alpha", "ud", user_data=data)
    cloud.launch_instance("alpha", "zipped", user_data=gzip.compress(b"#!/bin/sh\necho hi\n"))


def test_metadata_knows_an_instance_by_its_fixed_address(cloud: NetconService) -> None:
    cloud.add_key("alpha", "admin", ED25519)
    vm = cloud.launch_instance("alpha", "meta1", ["default", "web"], key="admin", user_data=b"hi")
    address = vm.addresses[0].address
    seen = cloud.instance_metadata(address)
    assert seen is not None
    assert (seen.name, seen.project, seen.address, seen.key_name) == (
        "meta1",
        "alpha",
        address,
        "admin",
    )
    assert seen.security_groups == ("default", "web")
    assert seen.user_data == b"hi" and seen.mtu == 1500 and seen.gateway == "10.0.0.1"
    web1 = cloud.instance_metadata(cloud.get_instance("web1").instance.addresses[0].address)
    assert web1 is not None and web1.floating == "203.0.113.1"
    assert cloud.instance_metadata("10.0.0.250") is None


def test_metadata_asks_the_address_on_the_network_it_arrived_from(cloud: NetconService) -> None:
    vm = cloud.launch_instance("alpha", "meta2")
    address = vm.addresses[0].address
    gateway = cloud.instance_metadata(address)
    assert gateway is not None
    found = cloud.instance_metadata(address, via=gateway.gateway)
    assert found is not None and found.name == "meta2"
    # The same address arriving at another network's gateway is nobody there.
    assert cloud.instance_metadata(address, via="10.255.255.1") is None


@pytest.mark.parametrize(
    ("cidr", "count", "first", "last"),
    [
        ("10.0.0.0/24", 1, "0.0.10.in-addr.arpa", "0.0.10.in-addr.arpa"),
        ("10.0.0.64/26", 64, "64.0.0.10.in-addr.arpa", "127.0.0.10.in-addr.arpa"),
        ("10.0.16.0/20", 16, "16.0.10.in-addr.arpa", "31.0.10.in-addr.arpa"),
        ("172.16.0.0/12", 16, "16.172.in-addr.arpa", "31.172.in-addr.arpa"),
        ("10.0.0.0/8", 1, "10.in-addr.arpa", "10.in-addr.arpa"),
    ],
)
def test_a_subnet_reverse_zones_hold_its_addresses_and_no_other(
    cidr: str, count: int, first: str, last: str
) -> None:
    import ipaddress

    from core.linux.dnsmasq import reverse_zones

    zones = reverse_zones(cidr)
    assert (len(zones), zones[0], zones[-1]) == (count, first, last)
    subnet = ipaddress.IPv4Network(cidr)
    # Every address of the subnet falls under exactly one zone, and the address beside
    # it under none.
    for address in (subnet[0], subnet[-1], subnet[len(zones) // 2]):
        name = ".".join(reversed(str(address).split("."))) + ".in-addr.arpa"
        assert sum(_under(name, zone) for zone in zones) == 1
    beside = ".".join(reversed(str(subnet[-1] + 1).split("."))) + ".in-addr.arpa"
    assert not any(_under(beside, zone) for zone in zones)


def _under(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)
