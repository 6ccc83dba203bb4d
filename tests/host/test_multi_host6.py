"""A multi-host dual-stack network from where its guests stand: two hosts joined by a
VXLAN underlay each serve their own guest, from an IPv6 address of their own; a guest
hears its own host's adverts and DHCPv6 only, keeps that host as its one default router,
reaches the public side through it without NAT, and still reaches and names the other
host's guest over the segment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.linux import segment6
from core.linux.metadata.spec import ADDRESS6
from core.linux.ports import port_name
from core.service import NetconService
from core.service.hostsync import HostSync
from tests.host.conftest import Lab, in_ns, sh
from tests.host.guests6 import (
    addresses,
    default_routes,
    dhcpv6,
    listener,
    ping6,
    rdisc6,
    resolve6,
    send_from,
    wait_for,
)
from tests.host.scenario import network_host

pytestmark = pytest.mark.skipif(
    any(
        sh("sh", "-c", f"command -v {t}", check=False).returncode
        for t in ("rdisc6", "dhclient", "curl")
    ),
    reason="missing programs: rdisc6, dhclient, curl (Debian: ndisc6 isc-dhcp-client curl)",
)
PREFIX = "2001:db8:16::"


def _own_link_local(ns: str, ifname: str) -> str:
    def formed() -> list[str]:
        found = [a.split("/")[0] for a in addresses(ns, ifname, "link")]
        return [a for a in found if a != ADDRESS6]

    found = wait_for(formed)
    assert found, f"{ifname} in {ns} has no link-local address of its own"
    return str(found[0])  # type: ignore[index]


def _global(ns: str, ifname: str) -> list[str]:
    return [a.split("/")[0] for a in addresses(ns, ifname)]


def test_each_host_advertises_and_routes_ipv6_for_its_own_guests(lab: Lab, tmp_path: Path) -> None:
    h1 = network_host(lab, tmp_path, "h1")
    h2 = lab.netns("h2")
    # The underlay joins the two hosts; h2 has its own way to the public side.
    in_ns(h1.ns, "ip", "link", "del", "und0")
    lab.veth(h1.ns, "und0", h2, "und0")
    lab.address(h1.ns, "und0", "192.168.90.1/24")
    lab.address(h2, "und0", "192.168.90.2/24")
    lab.veth(h2, "pub0", h1.public, "eth1")
    lab.address(h2, "pub0", "203.0.114.2/24")
    lab.address(h1.public, "eth1", "203.0.114.1/24")

    service = h1.service
    service.create_project("alpha")
    (network,) = service.create_networks(
        "10.0.16.0/24",
        1,
        256,
        116,
        1016,
        f"{PREFIX}/64",
        ipv6_mode="dhcpv6-stateless",
        multi_host=True,
    )
    service.heartbeat("nethost")
    service.heartbeat("h2")
    one = service.launch_instance("alpha", "one", host="nethost").addresses[0]
    two = service.launch_instance("alpha", "two", host="h2").addresses[0]
    assert one.address_v6 is not None and two.address_v6 is not None
    h2_sync = HostSync(NetconService(service.db.url, service.settings.replace(host="h2", netns=h2)))
    try:
        applied = [*h1.sync.sync().operations, *h2_sync.sync().operations]
        assert [op for op in applied if isinstance(op, segment6.SetSegment6)] == [
            segment6.SetSegment6("vx116", add=True),
            segment6.SetSegment6("vx116", add=True),
        ]
        assert h1.sync.plan().operations == ()
        assert h2_sync.plan().operations == ()
        bridge = network.bridge
        # Each host routes from its own IPv4 address and the IPv6 one at its offset.
        own = {
            f.host: f.address
            for f in service.list_fixed_ips(network=network.cidr).rows
            if f.host is not None
        }
        gateway = {h: PREFIX + a.rsplit(".", 1)[1] for h, a in own.items()}
        assert _global(h1.ns, bridge) == [gateway["nethost"]]
        assert _global(h2, bridge) == [gateway["h2"]]
        assert gateway["nethost"] != gateway["h2"]

        first = h1.instance("one", one.mac, bridge)
        second = lab.netns("two")
        lab.plug(h2, port_name(two.mac), bridge, second, two.mac)
        assert wait_for(lambda: _global(first, "eth0")) == [one.address_v6]
        assert wait_for(lambda: _global(second, "eth0")) == [two.address_v6]

        # Each guest's solicitation crosses the segment; only its own host's advert
        # comes back: one default router, and its own host as DNS server.
        h1_ll, h2_ll = _own_link_local(h1.ns, bridge), _own_link_local(h2, bridge)
        for _ in range(2):
            seen_by_two, seen_by_one = rdisc6(second), rdisc6(first)
            assert seen_by_two["from"] == h2_ll
            assert seen_by_one["from"] == h1_ll
        assert seen_by_two["Recursive DNS server"] == gateway["h2"]
        assert wait_for(lambda: default_routes(second)) == [h2_ll]
        assert default_routes(first) == [h1_ll]
        # DHCPv6 (information request, multicast over the segment): h2 answers alone.
        given = dhcpv6(lab, second, stateless=True)
        assert given is not None and given["dns"] == gateway["h2"]
        assert default_routes(second) == [h2_ll]

        # The guests reach each other across the segment, and name each other.
        mtu = int(in_ns(second, "cat", "/proc/sys/net/ipv6/conf/eth0/mtu").stdout)
        assert ping6(second, one.address_v6, mtu - 48)
        assert ping6(first, two.address_v6, mtu - 48)
        assert resolve6(second, gateway["h2"], "one") == ("NOERROR", [one.address_v6])
        assert resolve6(first, gateway["nethost"], "two") == ("NOERROR", [two.address_v6])

        # Out to the public side through h2, without NAT; its router has a route to the
        # /64 through h2 only, so the answer comes back through h2 too.
        lab.address(h2, "pub0", "2001:db8:fe::2/64")
        lab.address(h1.public, "eth1", "2001:db8:fe::1/64")
        in_ns(h1.public, "ip", "-6", "route", "add", f"{PREFIX}/64", "via", "2001:db8:fe::2")
        assert wait_for(lambda: _global(h1.public, "eth1"))
        assert ping6(second, "2001:db8:fe::1")
        outside = tmp_path / "outside"
        listener(lab, h1.public, "2001:db8:fe::1", 5001, outside)
        send_from(second, two.address_v6, "2001:db8:fe::1", 5001, "out")
        assert wait_for(lambda: f"{two.address_v6} out" in outside.read_text())

        # Its metadata over IPv6 comes from h2's server, about itself.
        found = in_ns(
            second,
            "curl",
            "-g",
            "-s",
            "-f",
            "--max-time",
            "4",
            "http://[fe80::a9fe:a9fe%eth0]/openstack/latest/meta_data.json",
        ).stdout
        assert json.loads(found)["name"] == "two"
        assert h1.sync.plan().operations == ()
        assert h2_sync.plan().operations == ()
    finally:
        h2_sync.close()
