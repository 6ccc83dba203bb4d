"""A dual-stack network as its host must serve it, without a kernel: what the desired
state holds, the dnsmasq command line and files per mode, and the ports' IPv6 elements."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from core import ipv6
from core.desired.host import read_desired
from core.linux import dnsmasq, dnsmasq6, spoof6
from core.linux.desired import DesiredNetwork
from core.linux.ipv6_host import NetworkV6, link_local
from core.linux.secgroups.spec import FilteredPort
from core.service import NetconService
from tests.support import make_service


def _served(service: NetconService) -> DesiredNetwork:
    (network,) = read_desired(service.db, service.settings).networks
    return network


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    made = make_service(tmp_path, dhcp_lease_time=120)
    made.create_project("alpha")
    return made


def test_the_desired_state_carries_the_network_and_instance_ipv6(
    service: NetconService,
) -> None:
    service.create_networks("10.24.0.0/24", 1, 256, None, None, "2001:db8:24::/64")
    web = service.launch_instance("alpha", "web1").addresses[0]
    network = _served(service)
    assert network.ipv6 == NetworkV6("2001:db8:24::/64", "2001:db8:24::1", "slaac")
    assert network.dhcp is not None
    assert [(h.hostname, h.address_v6) for h in network.dhcp.hosts] == [("web1", web.address_v6)]
    security = read_desired(service.db, service.settings).security
    assert security is not None
    assert [p.address_v6 for p in security.ports] == [web.address_v6]


def test_ipv4_only_and_multi_host_networks_serve_no_ipv6(service: NetconService) -> None:
    service.create_networks("10.24.0.0/24", 1, 256)
    service.launch_instance("alpha", "web1")
    network = _served(service)
    assert network.ipv6 is None
    assert network.dhcp is not None
    argv = dnsmasq.argv("/usr/sbin/dnsmasq", network, dnsmasq.DhcpFiles(Path("/s"), "br100"))
    assert "--enable-ra" not in argv
    assert "option6" not in dnsmasq.opts_text(network)


def test_each_host_serves_a_multi_host_network_ipv6_from_its_own_address(
    tmp_path: Path,
) -> None:
    service = make_service(tmp_path, host="h1")
    service.heartbeat("h1")
    service.create_networks(
        "10.70.0.0/24",
        manager="flatdhcp",
        bridge="brmh",
        multi_host=True,
        fixed_range_v6="2001:db8:70::/64",
    )
    service.create_project("ops", "flatdhcp")
    service.launch_instance("ops", "a1", host="h1")
    (network,) = read_desired(service.db, service.settings).networks
    # h1's own IPv4 address, and the IPv6 one at the same offset in the /64.
    assert network.gateway is not None and network.gateway != "10.70.0.1"
    assert network.ipv6 is not None
    offset = int(ipaddress.IPv4Address(network.gateway)) - int(ipaddress.IPv4Address("10.70.0.0"))
    assert network.ipv6.gateway == str(ipaddress.IPv6Address("2001:db8:70::") + offset)
    assert (network.multi_host, network.dual_stack) == (True, True)


@pytest.mark.parametrize(
    ("mode", "keyword"),
    [("slaac", "ra-only"), ("dhcpv6-stateless", "ra-stateless"), ("dhcpv6-stateful", "static")],
)
def test_dnsmasq_advertises_the_prefix_with_the_mode_mtu_and_dns(
    service: NetconService, mode: str, keyword: str
) -> None:
    made = service.create_networks(
        "10.24.0.0/24", 1, 256, None, None, "2001:db8:24::/64", ipv6_mode=mode
    )
    web = service.launch_instance("alpha", "web1").addresses[0]
    network = _served(service)
    argv = dnsmasq.argv("/usr/sbin/dnsmasq", network, dnsmasq.DhcpFiles(Path("/s"), "br100"))
    assert "--enable-ra" in argv
    assert f"--dhcp-range=set:net{made[0].id},2001:db8:24::,{keyword},64,120s" in argv
    assert f"--ra-param={network.bridge},mtu:{network.mtu},{dnsmasq6.RA_INTERVAL}" in argv
    assert "--local=/0.0.0.0.4.2.0.0.8.b.d.0.1.0.0.2.ip6.arpa/" in argv
    opts = dnsmasq.opts_text(network).splitlines()
    assert f"tag:net{made[0].id},option6:dns-server,[2001:db8:24::1]" in opts
    assert f"tag:net{made[0].id},option6:domain-search,novalocal" in opts
    # Names in both families; the address in the hosts file only where DHCPv6 gives it.
    names = dnsmasq.names_text(network).splitlines()
    assert f"{web.address} web1.novalocal web1" in names
    assert f"{web.address_v6} web1.novalocal web1" in names
    hosts = dnsmasq.hosts_text(network)
    if mode == "dhcpv6-stateful":
        assert hosts == f"{web.mac},web1.novalocal,{web.address},[{web.address_v6}]\n"
    else:
        assert hosts == f"{web.mac},web1.novalocal,{web.address}\n"


def test_the_lease_script_writes_dhcpv6_leases_down_beside_the_leases(tmp_path: Path) -> None:
    # The database has held an instance's IPv6 address since launch: no netcon process
    # (here one that would fail) is started, and the lease is only written down.
    script = tmp_path / "dhcp-script"
    script.write_text(dnsmasq.script_text("/bin/false"))
    script.chmod(0o755)
    files = dnsmasq.DhcpFiles(tmp_path, "br100")

    def event(action: str, duid: str, address: str, iaid: str, mac: str | None) -> None:
        env = {
            "PATH": os.environ["PATH"],
            "NETCON_LEASES": str(files.leases),
            "DNSMASQ_IAID": iaid,
            "DNSMASQ_SERVER_DUID": "00:01:00:01:2e:aa:bb:cc:0a:0b:0c:0d:0e:0f",
            **({"DNSMASQ_MAC": mac} if mac else {}),
        }
        subprocess.run([str(script), action, duid, address, "web1"], env=env, check=True)

    event("add", "00:03:00:01:fa:16:3e:00:00:01", "2001:db8::5", "1", "fa:16:3e:00:00:01")
    event("add", "00:01:00:01:aa", "2001:db8::6", "7", None)
    event("old", "00:03:00:01:fa:16:3e:00:00:01", "2001:db8::5", "1", "fa:16:3e:00:00:01")
    server = "00:01:00:01:2e:aa:bb:cc:0a:0b:0c:0d:0e:0f"
    leases = dnsmasq6.parse_leases(files.leases6.read_text())
    assert leases == (
        dnsmasq6.Lease6("2001:db8::6", "00:01:00:01:aa", "7", server, None),
        dnsmasq6.Lease6(
            "2001:db8::5", "00:03:00:01:fa:16:3e:00:00:01", "1", server, "fa:16:3e:00:00:01"
        ),
    )
    event("del", "00:01:00:01:aa", "2001:db8::6", "7", None)
    assert [lease.address for lease in dnsmasq6.parse_leases(files.leases6.read_text())] == [
        "2001:db8::5"
    ]
    assert not files.leased.exists()


def test_a_dhcpv6_lease_is_stale_once_its_address_changes_hands(
    service: NetconService,
) -> None:
    service.create_networks(
        "10.24.0.0/24", 1, 256, None, None, "2001:db8:24::/64", ipv6_mode="dhcpv6-stateful"
    )
    web = service.launch_instance("alpha", "web1").addresses[0]
    assert web.address_v6 is not None
    server = "00:01:00:01:2e:aa:bb:cc:0a:0b:0c:0d:0e:0f"
    mine = dnsmasq6.Lease6(web.address_v6, "00:01:aa", "1", server, web.mac.upper())
    unknown_mac = replace(mine, client_id="00:01:bb", mac=None)
    gone = dnsmasq6.Lease6("2001:db8:24::9", "00:01:cc", "1", server, "fa:16:3e:00:00:09")
    # Its own client's lease stays (whatever the DUID: dnsmasq knows the MAC or not).
    assert dnsmasq6.stale_leases(_served(service), [mine, unknown_mac, gone]) == (gone,)

    # Relaunched: the same address behind a new MAC.
    service.terminate_instance("web1")
    again = service.launch_instance("alpha", "web1").addresses[0]
    assert (again.address_v6, again.mac != web.mac) == (web.address_v6, True)
    assert dnsmasq6.stale_leases(_served(service), [mine, unknown_mac]) == (mine,)
    assert dnsmasq6.without(
        "".join(lease.line() + "\n" for lease in (mine, gone)), [mine]
    ) == gone.line() + "\n"


def test_link_local_addresses_are_those_of_modified_eui64() -> None:
    link = ipaddress.IPv6Network("fe80::/64")
    macs = ["fa:16:3e:12:34:56", "02:00:00:00:00:00", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"]
    macs += [":".join(f"{(k * 37 + j * 91) % 256:02x}" for j in range(6)) for k in range(300)]
    for mac in macs:
        assert link_local(mac) == str(ipv6.eui64(link, mac)), mac
    with pytest.raises(ValueError, match="not a MAC address"):
        link_local("fa:16:3e")


def test_a_port_may_send_from_its_link_local_and_global_address() -> None:
    port = FilteredPort("tapfa163e123456", "web1", "fa:16:3e:12:34:56", "10.0.0.3", (), None)
    assert link_local(port.mac) == "fe80::f816:3eff:fe12:3456"
    assert spoof6.port_elements(port) == ["tapfa163e123456 . fe80::f816:3eff:fe12:3456"]
    assert spoof6.port_elements(replace(port, address_v6="2001:db8::5")) == [
        "tapfa163e123456 . fe80::f816:3eff:fe12:3456",
        "tapfa163e123456 . 2001:db8::5",
    ]
