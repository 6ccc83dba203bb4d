"""IPv6 across a VXLAN segment: two guests of one dual-stack network, one on the network
host and one on a compute host, reach each other with full-size packets that no one may
fragment, and name each other over IPv6."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import update

from core.linux.ports import port_name
from core.service import NetconService
from core.service.hostsync import HostSync
from core.store.schema import instances
from tests.host.conftest import Lab, in_ns
from tests.host.guests6 import addresses, resolve6, wait_for
from tests.host.scenario import network_host

# An ICMPv6 echo sent with IPV6_DONTFRAG: a packet larger than the path allows is
# refused by the sender's stack (EMSGSIZE), never split, so an answer proves the whole
# packet crossed.
PING_WHOLE = r"""
import os, select, socket, struct, sys, time
target, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, 62, 1)  # IPV6_DONTFRAG
ident = os.getpid() & 0xFFFF
payload = bytes(i & 0xFF for i in range(size))
for seq in range(1, 6):
    try:
        s.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload, (target, 0, 0, 0))
    except OSError as exc:
        print(exc); sys.exit(2)
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        if not select.select([s], [], [], 0.2)[0]:
            continue
        data, peer = s.recvfrom(65536)
        if data[0] == 129 and struct.unpack("!H", data[4:6])[0] == ident and data[8:] == payload:
            sys.exit(0)
sys.exit(1)
"""


def ping_whole(ns: str, target: str, size: int) -> int:
    """0 when an unfragmentable echo of ``size`` bytes is answered whole; 2 when the
    sender's stack refuses it as larger than its MTU; 1 when no answer comes."""
    return in_ns(ns, sys.executable, "-c", PING_WHOLE, target, str(size), check=False).returncode


def _ipv6_mtu(ns: str) -> int:
    return int(in_ns(ns, "cat", "/proc/sys/net/ipv6/conf/eth0/mtu").stdout)


def test_guests_on_two_vxlan_hosts_reach_each_other_whole_and_by_name(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    compute = lab.netns("cmp")
    in_ns(host.ns, "ip", "link", "del", "und0")
    lab.veth(host.ns, "und0", compute, "und0")
    lab.address(host.ns, "und0", "192.168.90.1/24")
    lab.address(compute, "und0", "192.168.90.2/24")

    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks(
        "10.52.0.0/24", 1, 256, None, None, "2001:db8:52::/64", segmentation="vxlan"
    )
    near = service.launch_instance("alpha", "near").addresses[0]
    far = service.launch_instance("alpha", "far").addresses[0]
    assert near.address_v6 is not None and far.address_v6 is not None
    with service.db.write() as session:
        session.execute(update(instances).where(instances.c.name == "far").values(host="cmphost"))
    host.sync.sync()
    compute_sync = HostSync(
        NetconService(service.db.url, service.settings.replace(host="cmphost", netns=compute))
    )
    try:
        compute_sync.sync()
        near_ns = host.instance("near", near.mac, network.bridge)
        far_ns = lab.netns("far")
        lab.plug(compute, port_name(far.mac), network.bridge, far_ns, far.mac)

        # The far guest hears the network host's adverts across the segment and forms
        # exactly the address the database holds.
        assert wait_for(lambda: addresses(far_ns)) == [f"{far.address_v6}/64"]
        assert wait_for(lambda: addresses(near_ns)) == [f"{near.address_v6}/64"]
        # The advert's MTU, the network's: the physical 1500 less VXLAN's 50.
        for guest in (far_ns, near_ns):
            assert wait_for(lambda g=guest: _ipv6_mtu(g) == 1450)
        mtu = 1450
        # Full-size: the MTU less the IPv6 (40) and ICMPv6 echo (8) headers, both ways.
        whole = mtu - 48
        assert ping_whole(far_ns, near.address_v6, whole) == 0
        assert ping_whole(near_ns, far.address_v6, whole) == 0
        # One byte more does not fit the network's MTU, and is not split to make it.
        assert ping_whole(far_ns, near.address_v6, whole + 1) == 2

        # Each names the other over IPv6, through the network's DNS server.
        gateway = str(network.gateway_v6)
        assert resolve6(far_ns, gateway, "near") == ("NOERROR", [near.address_v6])
        assert resolve6(near_ns, gateway, "far.novalocal") == ("NOERROR", [far.address_v6])
        # Neither host's bridge took an address or a route from the adverts it carries.
        assert addresses(compute, network.bridge) == []
        assert addresses(host.ns, network.bridge) == [f"{network.gateway_v6}/64"]
        assert compute_sync.plan().operations == ()
        assert host.sync.plan().operations == ()
    finally:
        compute_sync.close()
