"""Proved from the guests, with every apply made by the agents on one PostgreSQL: two
network hosts as namespaces joined by a VXLAN underlay, the network served by h1 and its
instances on h2 (they reach h1 through the segment).

- A guest reaches its own floating IP; a floating IP moved under a guest's open
  connection resets that connection, and the guest's next one reaches the new instance.
- A terminated instance's port, still plugged, and a port whose MAC no row holds get no
  DHCP, no ARP answer, and send nothing that reaches another guest or the public side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.linux.ports import port_name
from tests.host.agents import PUBLIC_CLIENT, Cloud
from tests.host.conftest import Lab, in_ns
from tests.host.guests import lease
from tests.host.probes import (
    Recorder,
    open_connection,
    probe,
    say,
    send_arp_reply,
    send_udp,
)
from tests.host.test_floating_moves import _tcp_echo

pytestmark = pytest.mark.postgres

SERVING, COMPUTE = "h1", "h2"
CIDR, GATEWAY, VLAN, BRIDGE = "10.58.0.0/24", "10.58.0.1", 158, "br158"
STRANGER_MAC = "fa:16:3e:58:58:58"
BROADCAST = "ff:ff:ff:ff:ff:ff"


@pytest.fixture
def cloud(lab: Lab, pg_url: str, tmp_path: Path) -> Cloud:
    built = Cloud(lab, pg_url, tmp_path)
    built.service().db.dispose()
    for name in (SERVING, COMPUTE):
        built.start(name)
    built.wait_alive((SERVING, COMPUTE))
    return built


def _line(ns: str, address: str, text: str) -> str:
    """One line sent to ``address``:7000 from ``ns`` on a new connection: the answer."""
    result = in_ns(
        ns,
        sys.executable,
        "-c",
        "import socket\n"
        f"s = socket.create_connection(({address!r}, 7000), 3)\n"
        "s.settimeout(3)\n"
        f"s.sendall(b'{text}\\n')\n"
        "print(s.recv(100).decode().strip())\n",
        check=False,
    )
    return result.stdout.strip()


def test_guests_behind_the_segment_see_hairpin_moves_and_closed_ports(
    cloud: Cloud, lab: Lab, tmp_path: Path
) -> None:
    admin = cloud.service(COMPUTE)
    admin.create_networks(CIDR, 1, 256, VLAN, 11958)
    admin.create_project("theta")
    admin.add_security_group_rule("theta", "default", "tcp", 7000, 7000)
    admin.add_security_group_rule("theta", "default", "udp", 9999, 9999)
    names = ("vm1", "vm2", "client", "gone")
    vms = {name: admin.launch_instance("theta", name, host=COMPUTE).addresses[0] for name in names}
    admin.modify_network(CIDR, host=SERVING)
    admin.create_floating_range(SERVING, "203.0.113.158/32", pool="public")
    floating = admin.allocate_floating_ip("theta", "public").address
    admin.associate_floating_ip(floating, "vm1")
    cloud.wait_applied((SERVING, COMPUTE))

    guests = {}
    for name, vm in vms.items():
        guests[name] = lab.netns(name)
        lab.plug(cloud.ns[COMPUTE], port_name(vm.mac), BRIDGE, guests[name], vm.mac)
        assert lab.dhcp_client(guests[name]) == vm.address, name
    for name in ("vm1", "vm2"):
        _tcp_echo(lab, guests[name], 7000)

    # Its own floating IP answers a guest (through h1, and back across the segment).
    assert _line(guests["vm1"], floating, "self") == f"self from {guests['vm1']}"
    # A neighbour's open connection to it...
    client = open_connection(lab, guests["client"], floating)
    assert say(client, "one") == f"one from {guests['vm1']}"
    # ...is reset when the address moves, and the next one reaches the new instance.
    admin.associate_floating_ip(floating, "vm2")
    cloud.wait_applied((SERVING,))
    assert say(client, "two") == "reset"
    assert _line(guests["client"], floating, "three") == f"three from {guests['vm2']}"

    # The terminated instance's port stays plugged; a port whose MAC no row holds joins.
    admin.terminate_instance("gone")
    cloud.wait_applied((SERVING, COMPUTE))
    stranger = lab.netns("stranger")
    lab.plug(cloud.ns[COMPUTE], port_name(STRANGER_MAC), BRIDGE, stranger, STRANGER_MAC)
    closed = {
        "gone": (guests["gone"], vms["gone"].mac, vms["gone"].address),
        "stranger": (stranger, STRANGER_MAC, "10.58.0.200"),
    }
    gateway_mac = in_ns(cloud.ns[SERVING], "cat", f"/sys/class/net/{BRIDGE}/address").stdout
    neighbour = Recorder(lab, guests["vm2"], "eth0", tmp_path / "neighbour.txt")
    public = Recorder(lab, cloud.public, "pb0", tmp_path / "public.txt")
    vm2 = vms["vm2"]
    for name, (ns, mac, address) in closed.items():
        assert lease(lab, ns) is None, name
        in_ns(ns, "ip", "addr", "replace", f"{address}/24", "dev", "eth0")
        send_udp(ns, mac, vm2.mac, address, vm2.address, 9999, f"{name}-unicast")
        send_udp(ns, mac, BROADCAST, address, "10.58.0.255", 9999, f"{name}-broadcast")
        send_udp(ns, mac, gateway_mac.strip(), address, PUBLIC_CLIENT, 9999, f"{name}-public")
        # "vm2's address is at my MAC": ARP poisoning of the gateway and the neighbours.
        send_arp_reply(ns, mac, BROADCAST, mac, vm2.address, GATEWAY)
        assert probe(ns, [("icmp", GATEWAY, 8), ("icmp", vm2.address, 8)]) == [False, False]
    # A current instance on the same bridge is heard on the public side.
    send_udp(
        guests["client"],
        vms["client"].mac,
        gateway_mac.strip(),
        vms["client"].address,
        PUBLIC_CLIENT,
        9999,
        "client-public",
    )
    heard = neighbour.lines() + public.lines()
    assert [line for line in heard if "gone" in line or "stranger" in line] == []
    assert not [line for line in heard if vms["gone"].mac in line or STRANGER_MAC in line]
    assert [line.split()[-1] for line in public.lines() if "client-public" in line] == [
        "client-public"
    ]
    for ns in (cloud.ns[SERVING], cloud.ns[COMPUTE], guests["vm2"]):
        known = in_ns(ns, "ip", "neigh", "show").stdout
        assert vms["gone"].mac not in known and STRANGER_MAC not in known, known
    # The current guests still get their leases.
    assert lab.dhcp_client(guests["vm2"]) == vm2.address
