"""IPv6 beside IPv4 in the database: networks get a /64 each, instances an address known
at launch, and bad IPv6 input is refused with nothing written."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core import ipv6
from core.errors import NetconError
from core.service import NetconService
from tests.support import make_service, sqlite_dump


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    return make_service(tmp_path)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'netcon.db'}"


def test_eui64_is_what_slaac_forms() -> None:
    # RFC 4291 appendix A: flip the universal/local bit, put ff:fe in the middle.
    subnet = ipaddress.IPv6Network("2001:db8:0:1::/64")
    assert str(ipv6.eui64(subnet, "fa:16:3e:12:34:56")) == "2001:db8:0:1:f816:3eff:fe12:3456"
    assert str(ipv6.eui64(subnet, "00:00:00:00:00:01")) == "2001:db8:0:1:200:ff:fe00:1"


def test_each_network_gets_the_next_free_64(service: NetconService) -> None:
    made = service.create_networks(
        "10.0.0.0/16", 3, 256, 100, 1000, "2001:db8:0:10::/60", label="dual"
    )
    assert [(n.cidr, n.cidr_v6, n.gateway_v6, n.ipv6_mode) for n in made] == [
        ("10.0.0.0/24", "2001:db8:0:10::/64", "2001:db8:0:10::1", "slaac"),
        ("10.0.1.0/24", "2001:db8:0:11::/64", "2001:db8:0:11::1", "slaac"),
        ("10.0.2.0/24", "2001:db8:0:12::/64", "2001:db8:0:12::1", "slaac"),
    ]
    # The same range again: the /64s already taken are stepped over.
    more = service.create_networks(
        "10.0.8.0/21", 1, 256, 200, 1100, "2001:db8:0:10::/60", ipv6_mode="dhcpv6-stateful"
    )
    assert [(n.cidr_v6, n.ipv6_mode) for n in more] == [("2001:db8:0:13::/64", "dhcpv6-stateful")]
    assert service.create_networks("10.1.0.0/24", 1, 256, 300, 1200)[0].cidr_v6 is None


def test_the_settings_range_is_the_default(tmp_path: Path) -> None:
    service = make_service(tmp_path, fixed_range_v6="fd00:1::/48", ipv6_mode="dhcpv6-stateless")
    (made,) = service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    assert (made.cidr_v6, made.ipv6_mode) == ("fd00:1::/64", "dhcpv6-stateless")


@pytest.mark.parametrize("manager", ["flat", "flatdhcp", "vlan"])
def test_slaac_address_is_the_macs_and_known_at_launch(
    service: NetconService, manager: str
) -> None:
    bridge = {"flat": "br100", "flatdhcp": "br101", "vlan": None}[manager]
    vlan_start, vpn_start = (100, 1000) if manager == "vlan" else (None, None)
    service.create_networks(
        "10.0.0.0/24", 1, 256, vlan_start, vpn_start, "2001:db8:5::/64",
        manager=manager, bridge=bridge,
    )
    service.create_project("alpha", manager=manager)
    launched = service.launch_instance("alpha", "web1")
    (address,) = launched.addresses
    subnet = ipaddress.IPv6Network("2001:db8:5::/64")
    assert address.address_v6 == str(ipv6.eui64(subnet, address.mac))
    shown = service.get_instance("web1").instance.addresses[0]
    assert shown.address_v6 == address.address_v6


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateful"])
def test_flat_injects_the_ipv6_address_static(
    service: NetconService, tmp_path: Path, mode: str
) -> None:
    # No netcon host adverts on a Flat bridge: the guest is told its IPv6 address, prefix
    # length and gateway in its image, as its IPv4 ones.
    service.create_networks(
        "192.168.7.0/24", 1, 256, None, None, "2001:db8:7::/64",
        ipv6_mode=mode, manager="flat", bridge="brflat", dns="192.0.2.53",
    )
    service.create_project("legacy", manager="flat")
    service.launch_instance("legacy", "mail1")
    detail = service.get_instance("mail1")
    (address,) = detail.instance.addresses
    assert address.address_v6 is not None
    assert detail.injected is not None
    stanzas = detail.injected.interfaces.split("iface ")
    assert stanzas[2].splitlines() == [
        "eth0 inet6 static",
        f"    address {address.address_v6}",
        "    netmask 64",
        "    gateway 2001:db8:7::1",
        "    autoconf 0",
        "    accept_ra 0",
    ]
    assert f"address {address.address}" in stanzas[1]
    eth0 = yaml.safe_load(detail.injected.cloud_init)["ethernets"]["eth0"]
    assert eth0["addresses"] == [f"{address.address}/24", f"{address.address_v6}/64"]
    assert eth0["routes"] == [
        {"to": "default", "via": "192.168.7.1"},
        {"to": "::/0", "via": "2001:db8:7::1"},
    ]
    assert eth0["accept-ra"] is False
    # What `instance show` prints is the same configuration.
    shown = _netcon(tmp_path, "instance", "show", "mail1")
    assert shown.returncode == 0, shown.stderr
    assert detail.injected.interfaces in shown.stdout


def test_flat_ipv4_only_injects_no_ipv6(service: NetconService) -> None:
    service.create_networks("192.168.7.0/24", manager="flat", bridge="brflat")
    service.create_project("legacy", manager="flat")
    service.launch_instance("legacy", "mail1")
    injected = service.get_instance("mail1").injected
    assert injected is not None
    assert "inet6" not in injected.interfaces and "::" not in injected.cloud_init
    assert "accept-ra" not in injected.cloud_init


def test_stateful_address_follows_the_ipv4_offset(service: NetconService) -> None:
    service.create_networks(
        "10.0.0.0/24", 1, 256, 100, 1000, "2001:db8:6::/64", ipv6_mode="dhcpv6-stateful"
    )
    service.create_project("alpha")
    for name in ("a", "b", "c"):
        service.launch_instance("alpha", name)
    addresses = {
        a.address: a.address_v6
        for i in service.list_instances()
        for a in i.addresses
    }
    for v4, v6 in addresses.items():
        offset = int(ipaddress.IPv4Address(v4)) - int(ipaddress.IPv4Address("10.0.0.0"))
        assert v6 == str(ipaddress.IPv6Address("2001:db8:6::") + offset)
    assert len(set(addresses.values())) == 3


def test_terminate_frees_the_v6_address(service: NetconService) -> None:
    service.create_networks(
        "10.0.0.0/24", 1, 256, fixed_range_v6="2001:db8:7::/64", manager="flat", bridge="br100"
    )
    service.create_project("alpha", manager="flat")
    service.launch_instance("alpha", "web1")
    service.terminate_instance("web1")
    page = service.list_fixed_ips(in_use=True)
    assert [row.address_v6 for row in page.rows] == []
    assert all(row.address_v6 is None for row in service.list_fixed_ips().rows)


def test_modify_adds_ipv6_and_readdresses_instances(service: NetconService) -> None:
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.create_project("alpha")
    service.launch_instance("alpha", "web1")
    assert service.get_instance("web1").instance.addresses[0].address_v6 is None
    changed = service.modify_network("10.0.0.0/24", fixed_range_v6="2001:db8:9::/64")
    assert (changed.cidr_v6, changed.ipv6_mode) == ("2001:db8:9::/64", "slaac")
    (address,) = service.get_instance("web1").instance.addresses
    subnet = ipaddress.IPv6Network("2001:db8:9::/64")
    assert address.address_v6 == str(ipv6.eui64(subnet, address.mac))
    stateful = service.modify_network("10.0.0.0/24", ipv6_mode="dhcpv6-stateful")
    assert stateful.ipv6_mode == "dhcpv6-stateful"
    (address,) = service.get_instance("web1").instance.addresses
    offset = int(ipaddress.IPv4Address(address.address)) & 0xFF
    assert address.address_v6 == str(ipaddress.IPv6Address("2001:db8:9::") + offset)
    gone = service.modify_network("10.0.0.0/24", fixed_range_v6="")
    assert (gone.cidr_v6, gone.gateway_v6, gone.ipv6_mode) == (None, None, None)
    assert service.get_instance("web1").instance.addresses[0].address_v6 is None


# -- bad input: one line naming the field and the rule, nothing written ----------------------

CREATE_REFUSALS = [
    ("2001:db8::/120", "fixed_range_v6", "smaller than a /64"),
    ("2001:db8::/65", "fixed_range_v6", "smaller than a /64"),
    ("fe80::/64", "fixed_range_v6", "link-local"),
    ("ff02::/64", "fixed_range_v6", "multicast"),
    ("::1/128", "fixed_range_v6", "loopback"),
    ("10.9.0.0/24", "fixed_range_v6", "is IPv4"),
    ("2001:db8::1/64", "fixed_range_v6", "host bits"),
    ("2001:db8::", "fixed_range_v6", "must be an IPv6 CIDR"),
    ("2001:db8::zz/64", "fixed_range_v6", "not a valid CIDR"),
    ("2001:db8:0:10::/62", "fixed_range_v6", "4 free of 4"),  # 5 networks asked below
    ("::/0", "fixed_range_v6", "takes in the link-local range fe80::/10"),
    ("::/64", "fixed_range_v6", "takes in the loopback range ::1/128"),
    ("2001:db8:1::/64", "fixed_range_v6", "overlaps 2001:db8:1::/64, another network's"),
]


@pytest.mark.parametrize(("range_v6", "field", "rule"), CREATE_REFUSALS)
def test_bad_ranges_write_nothing(
    tmp_path: Path, range_v6: str, field: str, rule: str
) -> None:
    service = make_service(tmp_path)
    service.create_networks("10.1.0.0/24", 1, 256, 90, 990, "2001:db8:1::/64")
    before = sqlite_dump(_url(tmp_path))
    with pytest.raises(NetconError) as raised:
        service.create_networks("10.0.0.0/16", 5, 256, 100, 1000, range_v6)
    assert raised.value.field == field and rule in raised.value.message
    assert sqlite_dump(_url(tmp_path)) == before


def test_overlap_and_mismatched_families_are_refused(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.create_networks("10.1.0.0/24", 1, 256, 90, 990, "2001:db8:1::/64")
    service.create_networks("10.2.0.0/24", 1, 256, 91, 991)
    before = sqlite_dump(_url(tmp_path))
    cases = [
        (lambda: service.create_networks("10.3.0.0/24", 1, 256, 100, 1000, "2001:db8:1::/64"),
         "fixed_range_v6"),
        (lambda: service.create_networks("2001:db8:2::/64", 1, 256, 100, 1000), "fixed_range"),
        (lambda: service.create_networks("10.3.0.0/24", ipv6_mode="slaac"), "ipv6_mode"),
        (lambda: service.create_networks("10.3.0.0/24", 1, 256, 100, 1000, "2001:db8:3::/64",
                                         ipv6_mode="eui"), "ipv6_mode"),
        (lambda: service.modify_network("10.2.0.0/24", fixed_range_v6="2001:db8:1::/64"),
         "fixed_range_v6"),
        (lambda: service.modify_network("10.2.0.0/24", fixed_range_v6="2001:db8:4::/56"),
         "fixed_range_v6"),
        (lambda: service.modify_network("10.2.0.0/24", fixed_range_v6="10.2.0.0/24"),
         "fixed_range_v6"),
        (lambda: service.modify_network("10.2.0.0/24", ipv6_mode="dhcpv6-stateful"),
         "ipv6_mode"),
        (lambda: service.modify_network("10.1.0.0/24", fixed_range_v6="", ipv6_mode="slaac"),
         "ipv6_mode"),
    ]
    for attempt, field in cases:
        with pytest.raises(NetconError) as raised:
            attempt()
        assert raised.value.field == field, raised.value.message
        assert sqlite_dump(_url(tmp_path)) == before


def test_a_wider_range_steps_over_the_64s_inside_it(service: NetconService) -> None:
    service.create_networks("10.1.0.0/24", 1, 256, 90, 990, "2001:db8::/64")
    made = service.create_networks("10.0.0.0/23", 2, 256, 100, 1000, "2001:db8::/48")
    assert [n.cidr_v6 for n in made] == ["2001:db8:0:1::/64", "2001:db8:0:2::/64"]


def _netcon(tmp_path: Path, *words: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NETCON_DATABASE_URL": _url(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *words],
        capture_output=True, text=True, env=env, timeout=60,
    )


def test_command_line_positional_order_and_json(tmp_path: Path) -> None:
    # nova-manage's order: FIXED_RANGE NUM_NETWORKS NETWORK_SIZE VLAN_START VPN_START, then
    # FIXED_RANGE_V6.
    assert _netcon(tmp_path, "init").returncode == 0
    made = _netcon(tmp_path, "--json", "network", "create", "10.0.0.0/24", "1", "256", "100",
                   "1000", "fd00:a::/64")
    assert made.returncode == 0, made.stderr
    shown_network = json.loads(_netcon(tmp_path, "--json", "network", "show", "10.0.0.0/24").stdout)
    assert (shown_network["cidr_v6"], shown_network["ipv6_mode"]) == ("fd00:a::/64", "slaac")
    refused = _netcon(tmp_path, "network", "create", "10.0.1.0/24", "--fixed-range-v6",
                      "fe80::/64")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "fixed_range_v6" in refused.stderr
    assert _netcon(tmp_path, "project", "create", "alpha").returncode == 0
    assert _netcon(tmp_path, "instance", "launch", "web1", "--project", "alpha").returncode == 0
    shown = json.loads(_netcon(tmp_path, "--json", "instance", "show", "web1").stdout)
    (address,) = shown["addresses"]
    assert ipaddress.IPv6Address(address["address_v6"]) in ipaddress.IPv6Network("fd00:a::/64")
    text = _netcon(tmp_path, "instance", "show", "web1").stdout
    assert address["address_v6"] in text


CLI_REFUSALS = [
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "2001:db8:1::/64"],
     "fixed_range_v6", "overlaps 2001:db8:1::/64"),
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "2001:db8:0:1:8000::/65"],
     "fixed_range_v6", "smaller than a /64"),
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "fe80::/64"],
     "fixed_range_v6", "link-local"),
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "ff02::/64"],
     "fixed_range_v6", "multicast"),
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "::1/128"],
     "fixed_range_v6", "loopback"),
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "::/0"],
     "fixed_range_v6", "cannot be routed"),
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "10.5.0.0/16"],
     "fixed_range_v6", "is IPv4"),
    (["network", "create", "2001:db8:9::/64", "1", "256", "101", "1001"],
     "fixed_range", "is IPv6"),
    (["network", "create", "10.3.0.0/24", "--ipv6-mode", "slaac"],
     "ipv6_mode", "needs an IPv6 range"),
    (["network", "create", "10.3.0.0/24", "1", "256", "101", "1001", "2001:db8:3::/64",
      "--ipv6-mode", "SLAAC"], "ipv6_mode", "must be one of"),
    (["network", "modify", "10.2.0.0/24", "--fixed-range-v6", "2001:db8:4::/56",
      "--ipv6-mode", "slaac"], "fixed_range_v6", "a network's IPv6 subnet is a /64"),
    (["network", "modify", "10.2.0.0/24", "--fixed-range-v6", "2001:db8:1::/64"],
     "fixed_range_v6", "overlaps 2001:db8:1::/64, network 10.1.0.0/24's range"),
    (["network", "modify", "10.2.0.0/24", "--fixed-range-v6", "10.2.0.0/24"],
     "fixed_range_v6", "is IPv4"),
    (["network", "modify", "10.2.0.0/24", "--ipv6-mode", "dhcpv6-stateful"],
     "ipv6_mode", "no IPv6"),
    (["floating", "create", "h1", "2001:db8:f::/120"], "ip_range", "is IPv6"),
]


def test_the_command_line_refuses_bad_ipv6_in_one_line_writing_nothing(tmp_path: Path) -> None:
    assert _netcon(tmp_path, "init").returncode == 0
    for words in (
        ["network", "create", "10.1.0.0/24", "1", "256", "90", "990", "2001:db8:1::/64"],
        ["network", "create", "10.2.0.0/24", "1", "256", "91", "991"],
    ):
        made = _netcon(tmp_path, *words)
        assert made.returncode == 0, made.stderr
    before = sqlite_dump(_url(tmp_path))
    for words, field, rule in CLI_REFUSALS:
        refused = _netcon(tmp_path, *words)
        assert refused.returncode == 2, (words, refused.stderr)
        assert refused.stdout == "", words
        assert refused.stderr.startswith(f"netcon: {field}: "), refused.stderr
        assert refused.stderr.count("\n") == 1 and rule in refused.stderr, refused.stderr
        assert sqlite_dump(_url(tmp_path)) == before, words
        as_json = json.loads(_netcon(tmp_path, "--json", *words).stderr)
        assert as_json["error"]["field"] == field
