"""IPv6 beside IPv4 on the network host, seen from inside guest namespaces: router
adverts with the prefix, MTU and DNS; SLAAC and DHCPv6 addresses exactly as the database
holds them; names over IPv6; and a port that may send only from its own addresses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.linux import dnsmasq6
from core.linux.metadata.spec import ADDRESS6
from core.linux.operations import AddAddress, EnableForwardingV6, EnableIpv6, ReleaseLeases6
from core.views import AddressView
from tests.host.conftest import Lab, in_ns, make_service, sh
from tests.host.guests import upstream_resolver
from tests.host.guests6 import (
    addresses,
    default_routes,
    dhcpv6,
    duid,
    ip6_arpa,
    listener,
    ping6,
    rdisc6,
    resolve6,
    rogue_advert,
    send_from,
    wait_for,
)
from tests.host.scenario import NetworkHost, network_host

# The guests' own IPv6 tools (Debian: ndisc6, isc-dhcp-client).
pytestmark = pytest.mark.skipif(
    any(sh("sh", "-c", f"command -v {t}", check=False).returncode for t in ("rdisc6", "dhclient")),
    reason="missing programs: rdisc6, dhclient (Debian: ndisc6 isc-dhcp-client)",
)


def _bridge_link_local(ns: str, bridge: str) -> str:
    """The bridge's own link-local address (the kernel's), not the metadata service's."""

    def formed() -> list[str]:
        found = [a.split("/")[0] for a in addresses(ns, bridge, "link")]
        return [a for a in found if a != ADDRESS6]

    found = wait_for(formed)
    assert found, f"{bridge} has no link-local address of its own"
    return str(found[0])  # type: ignore[index]


def test_a_slaac_guest_gets_the_database_address_route_mtu_and_dns(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks(
        "10.24.0.0/24", 1, 256, None, None, "2001:db8:24::/64", segmentation="vxlan"
    )
    web = service.launch_instance("alpha", "web1").addresses[0]
    applied = host.sync.sync()
    assert any(
        isinstance(op, AddAddress)
        and (op.ifname, op.address, op.prefixlen) == (network.bridge, "2001:db8:24::1", 64)
        for op in applied.operations
    )
    assert any(isinstance(op, EnableForwardingV6) for op in applied.operations)
    # The host sees its IPv6 address and forwarding: a second apply does nothing.
    again = host.sync.plan()
    assert again.operations == ()
    # ... and, the groups judging IPv6 too, no warning that they do not.
    assert [w for w in again.warnings if "IPv6" in w] == []
    assert in_ns(host.ns, "cat", "/proc/sys/net/ipv6/conf/all/forwarding").stdout.strip() == "1"

    guest = host.instance("web1", web.mac, network.bridge)
    assert web.address_v6 is not None
    assert wait_for(lambda: addresses(guest)) == [f"{web.address_v6}/64"]
    gateway_ll = _bridge_link_local(host.ns, network.bridge)
    assert wait_for(lambda: default_routes(guest)) == [gateway_ll]

    advert = rdisc6(guest)
    mtu = in_ns(host.ns, "cat", f"/sys/class/net/{network.bridge}/mtu").stdout.strip()
    assert advert["MTU"] == f"{mtu} bytes (valid)"
    assert advert["Prefix"] == "2001:db8:24::/64"
    assert advert["Autonomous address conf."] == "Yes"
    assert advert["Stateful address conf."] == "No"
    assert advert["Recursive DNS server"] == "2001:db8:24::1"
    assert advert["DNS search list"] == "novalocal"
    assert advert["from"] == gateway_ll


def test_a_stateful_guest_gets_exactly_its_address_from_dhcpv6(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    # A host whose new links come without IPv6: the bridge gets it back for its gateway.
    in_ns(host.ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks(
        "10.25.0.0/24", 1, 256, None, None, "2001:db8:25::/64", ipv6_mode="dhcpv6-stateful"
    )
    service.launch_instance("alpha", "other1")
    web = service.launch_instance("alpha", "web1").addresses[0]
    applied = host.sync.sync()
    assert EnableIpv6(network.bridge) in applied.operations
    assert host.sync.plan().operations == ()
    assert web.address_v6 is not None and web.address_v6.startswith("2001:db8:25::")
    in_ns(host.ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=0")

    guest = host.instance("web1", web.mac, network.bridge)
    assert wait_for(lambda: addresses(guest, scope="link"))
    advert = rdisc6(guest)
    assert advert["Stateful address conf."] == "Yes"
    assert advert["Autonomous address conf."] == "No"
    assert advert["Prefix"] == "2001:db8:25::/64"
    given = dhcpv6(lab, guest)
    assert given is not None
    assert given["address"] == web.address_v6
    assert given["dns"] == "2001:db8:25::1"
    assert given["search"] == "novalocal."
    # The address is the one DHCPv6 gave, none formed from the advert; the route is its.
    assert addresses(guest) == [f"{web.address_v6}/{given['prefixlen']}"]
    gateway_ll = _bridge_link_local(host.ns, network.bridge)
    assert wait_for(lambda: default_routes(guest)) == [gateway_ll]
    assert ping6(guest, "2001:db8:25::1")


def test_a_relaunched_address_reaches_a_guest_with_a_new_duid_in_one_apply(
    lab: Lab, tmp_path: Path
) -> None:
    # The field's failure: DHCPv6 binds an address to the client's DUID, and a rebuilt
    # guest comes with a new one while the old lease still holds its address.
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks(
        "10.26.0.0/24", 1, 256, None, None, "2001:db8:26::/64", ipv6_mode="dhcpv6-stateful"
    )
    old = service.launch_instance("alpha", "web1").addresses[0]
    host.sync.sync()
    first = host.instance("web1", old.mac, network.bridge)
    assert wait_for(lambda: addresses(first, scope="link"))
    first_duid = tmp_path / "first.leases"
    given = dhcpv6(lab, first, lease_file=first_duid)
    assert given is not None and given["address"] == old.address_v6
    # The old guest goes without a word, as a rebuilt one does (no DHCPv6 release).
    in_ns(first, "ip", "link", "set", "eth0", "down")

    # Launched again: the same IPv4 address, so the same stateful IPv6 one, a new MAC.
    service.terminate_instance("web1")
    new = service.launch_instance("alpha", "web1").addresses[0]
    assert (new.address, new.address_v6) == (old.address, old.address_v6)
    assert new.mac != old.mac
    leases6 = host.layer.dhcp_dir / f"{network.bridge}.leases6"
    (stale,) = dnsmasq6.parse_leases(leases6.read_text())
    assert (stale.address, stale.mac) == (old.address_v6, old.mac)
    applied = host.sync.sync()
    (released,) = [op for op in applied.operations if isinstance(op, ReleaseLeases6)]
    assert released.leases == (stale,)
    assert dnsmasq6.parse_leases(leases6.read_text()) == ()
    assert host.sync.plan().operations == ()
    # A lease written down that dnsmasq no longer holds (its reply: no binding) is
    # forgotten without a failure.
    leases6.write_text(stale.line() + "\n")
    assert host.sync.sync().operations == (released,)
    assert host.sync.plan().operations == ()

    second = host.instance("web1-again", new.mac, network.bridge)
    assert wait_for(lambda: addresses(second, scope="link"))
    second_duid = tmp_path / "second.leases"
    given = dhcpv6(lab, second, lease_file=second_duid)
    assert duid(second_duid) != duid(first_duid)
    assert given is not None and given["address"] == new.address_v6
    assert addresses(second) == [f"{new.address_v6}/{given['prefixlen']}"]
    (mine,) = dnsmasq6.parse_leases(leases6.read_text())
    assert (mine.address, mine.mac) == (new.address_v6, new.mac)
    assert host.sync.plan().operations == ()


def test_a_stateless_guest_forms_its_address_and_asks_dhcpv6_for_dns(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    (network,) = host.service.create_networks(
        "10.28.0.0/24", 1, 256, None, None, "2001:db8:28::/64", ipv6_mode="dhcpv6-stateless"
    )
    web = host.service.launch_instance("alpha", "web1").addresses[0]
    host.sync.sync()
    guest = host.instance("web1", web.mac, network.bridge)
    assert wait_for(lambda: addresses(guest)) == [f"{web.address_v6}/64"]
    advert = rdisc6(guest)
    assert advert["Autonomous address conf."] == "Yes"
    assert advert["Stateful address conf."] == "No"
    assert advert["Stateful other conf."] == "Yes"
    given = dhcpv6(lab, guest, stateless=True)
    assert given is not None
    assert (given["address"], given["dns"], given["search"]) == (
        "",
        "2001:db8:28::1",
        "novalocal.",
    )


def _two_guests(
    lab: Lab, tmp_path: Path, **settings: Any
) -> tuple[NetworkHost, AddressView, AddressView, str, str]:
    """web1 and db1 on one SLAAC network, each with the address the database holds."""
    host = network_host(lab, tmp_path, **settings)
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks("10.26.0.0/24", 1, 256, None, None, "2001:db8:26::/64")
    web = service.launch_instance("alpha", "web1").addresses[0]
    db = service.launch_instance("alpha", "db1").addresses[0]
    host.sync.sync()
    first = host.instance("web1", web.mac, network.bridge)
    second = host.instance("db1", db.mac, network.bridge)
    for guest, port in ((first, web), (second, db)):
        assert wait_for(lambda g=guest: addresses(g)) == [f"{port.address_v6}/64"]
        assert port.address_v6 is not None
    return host, web, db, first, second


def test_two_guests_reach_and_name_each_other_over_ipv6(lab: Lab, tmp_path: Path) -> None:
    host, web, db, first, second = _two_guests(lab, tmp_path, dns_servers=["198.51.100.2"])
    asked = tmp_path / "asked-upstream"
    assert upstream_resolver(lab, host.ns, record=asked) == "198.51.100.2"
    assert web.address_v6 is not None and db.address_v6 is not None
    mtu = int(in_ns(first, "cat", "/sys/class/net/eth0/mtu").stdout)
    # Full-size packets: the MTU less the IPv6 and ICMPv6 headers.
    assert ping6(second, web.address_v6, mtu - 48)
    assert ping6(first, db.address_v6, mtu - 48)
    gateway = "2001:db8:26::1"
    assert resolve6(second, gateway, "web1") == ("NOERROR", [web.address_v6])
    assert resolve6(second, gateway, "web1.novalocal") == ("NOERROR", [web.address_v6])
    assert resolve6(second, gateway, "web1.novalocal", "A") == ("NOERROR", [web.address])
    assert resolve6(second, gateway, ip6_arpa(web.address_v6), "PTR") == (
        "NOERROR",
        ["web1.novalocal"],
    )
    # The /64's reverse zone is answered here: an address no instance has does not exist.
    assert resolve6(second, gateway, ip6_arpa("2001:db8:26::99"), "PTR") == ("NXDOMAIN", [])
    # Outside names still go upstream over IPv6 too; the /64's reverse names never do.
    assert resolve6(second, gateway, "www.example.test", "A") == ("NOERROR", ["192.0.2.7"])
    assert "ip6.arpa" not in asked.read_text()
    assert "example.test" in asked.read_text()

    # Routed to the public side without NAT, once its router has a route to the /64
    # through the network host (the addresses and route are the public side's own).
    lab.address(host.ns, "pub0", "2001:db8:ff::2/64")
    lab.address(host.public, "eth0", "2001:db8:ff::1/64")
    in_ns(host.public, "ip", "-6", "route", "add", "2001:db8:26::/64", "via", "2001:db8:ff::2")
    assert wait_for(lambda: addresses(host.public))
    assert ping6(first, "2001:db8:ff::1", mtu - 48)
    outside = tmp_path / "outside"
    listener(lab, host.public, "2001:db8:ff::1", 5001, outside)
    send_from(first, web.address_v6, "2001:db8:ff::1", 5001, "out")
    # The public side sees the guest's own address: nothing translated it.
    assert wait_for(lambda: f"{web.address_v6} out" in outside.read_text())


def test_a_guest_cannot_spoof_a_neighbour_or_advertise_itself_as_router(
    lab: Lab, tmp_path: Path
) -> None:
    host, web, db, first, second = _two_guests(lab, tmp_path)
    assert web.address_v6 is not None and db.address_v6 is not None
    record = tmp_path / "heard"
    # Heard past the network host, on the public side (the host itself takes nothing
    # from guests on port 5000): routed there without NAT, as the guest sent it.
    lab.address(host.ns, "pub0", "2001:db8:ff::2/64")
    lab.address(host.public, "eth0", "2001:db8:ff::1/64")
    in_ns(host.public, "ip", "-6", "route", "add", "2001:db8:26::/64", "via", "2001:db8:ff::2")
    assert wait_for(lambda: addresses(host.public))
    target = "2001:db8:ff::1"
    listener(lab, host.public, target, 5000, record)
    own = db.address_v6
    send_from(second, own, target, 5000, "own")
    assert wait_for(lambda: f"{own} own" in record.read_text())
    # From its neighbour's address, or any other of the prefix: dropped at its port.
    in_ns(second, "ip", "addr", "add", f"{web.address_v6}/64", "dev", "eth0", "nodad")
    send_from(second, web.address_v6, target, 5000, "spoofed")
    send_from(second, "2001:db8:26::bad", target, 5000, "made-up")
    # What a DHCPv6 server answers from: dropped even from its own address.
    send_from(second, own, target, 5000, "server", source_port=547)
    send_from(second, own, target, 5000, "after")
    assert wait_for(lambda: f"{own} after" in record.read_text())
    heard = record.read_text()
    assert "spoofed" not in heard and "made-up" not in heard and "server" not in heard

    # A router advert of its own does not reach its neighbour: the neighbour's default
    # route and addresses stay as the gateway's adverts made them.
    gateway_ll = _bridge_link_local(host.ns, host.service.list_networks()[0].bridge)
    rogue_advert(second, "2001:db8:bad::/64")
    time.sleep(1)
    assert default_routes(first) == [gateway_ll]
    assert addresses(first) == [f"{web.address_v6}/64"]

    # The same advert between two namespaces with no filter between them is obeyed:
    # what the port dropped was a working advert.
    left, right = lab.netns("ra-left"), lab.netns("ra-right")
    lab.veth(left, "eth0", right, "eth0", mac_a="fa:16:3e:00:24:01")
    assert wait_for(lambda: addresses(right, scope="link"))
    rogue_advert(right, "2001:db8:bad::/64")
    right_ll = addresses(right, scope="link")[0].split("/")[0]
    assert wait_for(lambda: default_routes(left)) == [right_ll]


def test_ipv6_added_to_a_network_reaches_its_guest_through_scoped_applies(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    (network,) = host.service.create_networks("10.27.0.0/24", 1, 256)
    web = host.service.launch_instance("alpha", "web1").addresses[0]
    host.sync.sync()
    guest = host.instance("web1", web.mac, network.bridge)
    assert web.address_v6 is None
    assert wait_for(lambda: addresses(guest, scope="link"))
    assert addresses(guest) == []

    # Each change applies itself, scoped to what it touched.
    service = make_service(lab, netns=host.ns, auto_apply=True)
    service.modify_network(network.id, fixed_range_v6="2001:db8:27::/64")
    (web,) = service.get_instance("web1").instance.addresses
    assert web.address_v6 is not None
    assert wait_for(lambda: addresses(guest), 30) == [f"{web.address_v6}/64"]
    db = service.launch_instance("alpha", "db1").addresses[0]
    assert resolve6(guest, "2001:db8:27::1", "db1") == ("NOERROR", [db.address_v6])
    assert host.sync.plan().operations == ()

    # Taken away again: the bridge loses its gateway, and the plan stays empty.
    service.modify_network(network.id, fixed_range_v6="")
    assert not any(a.address == "2001:db8:27::1" for a in host.layer.observe().addresses)
    assert host.sync.plan().operations == ()
