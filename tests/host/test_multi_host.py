"""Multi-host networks from where their guests stand: every host with instances of the
network routes them, answers their DHCP and DNS from an address of its own, SNATs them
out of its own public address and NATs their floating IPs; the other hosts' dnsmasqs,
on the same segment, never answer them. Three hosts as namespaces joined by a VXLAN
underlay, a real PostgreSQL, and one `netcon agent` each doing every apply.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.service import NetconService
from tests.host.agents import HOST_DOWN_TIME, HOSTS, PUBLIC_CLIENT, Cloud
from tests.host.conftest import Lab, in_ns
from tests.host.guests import lease, renew, resolve
from tests.host.scenario import network_host

pytestmark = pytest.mark.postgres

CIDR = "10.0.16.0/24"
BRIDGE = "br120"

# Every DHCP server message (UDP from port 67) the namespace's host stack sends or
# receives on one interface, for as long as it is told: what a host's dnsmasq answered.
SNIFF_DHCP = r"""
import json, socket, struct, sys, time
ifname, seconds = sys.argv[1], float(sys.argv[2])
# ETH_P_ALL: a socket of one protocol sees only frames coming in, not those sent.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((ifname, 0))
s.settimeout(0.2)
print("ready", flush=True)
seen, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    try:
        frame, meta = s.recvfrom(2048)
    except socket.timeout:
        continue
    if frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17 or struct.unpack_from("!H", ip, ihl)[0] != 67:
        continue
    dhcp = ip[ihl + 8:]
    found = {"source": socket.inet_ntoa(ip[12:16]), "client": dhcp[28:34].hex(":"),
             "outgoing": meta[2] == socket.PACKET_OUTGOING}
    offset = 240
    while offset < len(dhcp) and dhcp[offset] != 255:
        if dhcp[offset] == 0:
            offset += 1
            continue
        code, length = dhcp[offset], dhcp[offset + 1]
        value = dhcp[offset + 2:offset + 2 + length]
        if code == 53:
            found["type"] = {2: "OFFER", 5: "ACK", 6: "NAK"}.get(value[0], str(value[0]))
        elif code == 3:
            found["router"] = socket.inet_ntoa(value[:4])
        offset += 2 + length
    seen.append(found)
print(json.dumps(seen))
"""


# INIT-REBOOT (RFC 2131 4.3.2): a guest that remembers its address asks for it again,
# broadcast and naming no server, so that every DHCP server on the segment hears it; an
# authoritative server that does not know the guest would NAK it and take its address.
REBOOT_CLIENT = r"""
import json, random, socket, struct, sys, time
ifname, address, mac, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
xid = random.randrange(1 << 32)
message = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, xid, 0, 0x8000,
                      bytes(4), bytes(4), bytes(4), bytes(4))
message += bytes.fromhex(mac.replace(":", "")) + bytes(10) + bytes(192) + b"\x63\x82\x53\x63"
message += bytes([53, 1, 3, 50, 4]) + socket.inet_aton(address) + bytes([55, 2, 1, 3, 255])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 68))
s.settimeout(0.2)
s.sendto(message, ("255.255.255.255", 67))
replies, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    try:
        reply = s.recv(2048)
    except socket.timeout:
        continue
    if struct.unpack_from("!I", reply, 4)[0] != xid:
        continue
    found, offset = {}, 240
    while offset < len(reply) and reply[offset] != 255:
        if reply[offset] == 0:
            offset += 1
            continue
        code, length = reply[offset], reply[offset + 1]
        value = reply[offset + 2:offset + 2 + length]
        if code == 53:
            found["type"] = {5: "ACK", 6: "NAK"}.get(value[0], str(value[0]))
        elif code == 54:
            found["server"] = socket.inet_ntoa(value)
        offset += 2 + length
    replies.append(found)
print(json.dumps(replies))
"""


def reboot_request(ns: str, address: str, mac: str) -> list[dict[str, str]]:
    """The answers a guest gets to an INIT-REBOOT request for ``address``."""
    result = in_ns(ns, sys.executable, "-c", REBOOT_CLIENT, "eth0", address, mac, "3", timeout=30)
    found: list[dict[str, str]] = json.loads(result.stdout)
    return found


class Sniffer:
    """The DHCP answers seen on one host's bridge while it runs."""

    def __init__(self, lab: Lab, ns: str, ifname: str, seconds: float) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SNIFF_DHCP, ifname, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        lab.processes.append(self.process)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def answers(self) -> list[dict[str, object]]:
        out, _ = self.process.communicate(timeout=60)
        found: list[dict[str, object]] = json.loads(out)
        return found


@pytest.fixture
def cloud(lab: Lab, pg_url: str, tmp_path: Path) -> Cloud:
    built = Cloud(lab, pg_url, tmp_path)
    for name in HOSTS:
        built.start(name)
    built.wait_alive()
    return built


def _multi_host_network(admin: NetconService) -> None:
    """nova-network's example: one /24 VLAN network of 256 addresses, multi-host, whose
    network host is h1; alpha's web servers are open to everyone."""
    admin.create_networks(CIDR, 1, 256, 120, 1020, multi_host=True)
    admin.create_project("alpha")
    admin.add_security_group_rule("alpha", "default", "tcp", 8080, 8080)


def _guest(cloud: Cloud, host: str, name: str, mac: str) -> str:
    ns = cloud.lab.netns(name)
    cloud.lab.plug(cloud.ns[host], f"tap{mac.replace(':', '')}", BRIDGE, ns, mac)
    return ns


def _own_gateways(admin: NetconService) -> dict[str, str]:
    """Each host's own address on the network, as `fixed list` shows it."""
    rows = admin.list_fixed_ips(network=CIDR).rows
    return {str(f.host): f.address for f in rows if f.host is not None}


def _state(admin: NetconService, address: str) -> str:
    (row,) = [f for f in admin.list_fixed_ips(search=address).rows if f.address == address]
    return row.state


def _dnsmasq_log(cloud: Cloud, host: str) -> str:
    (log,) = (cloud.lab.state_dir / host).glob(f"**/dhcp/{BRIDGE}.log")
    return log.read_text()


def _dnsmasq_runs(cloud: Cloud, host: str) -> bool:
    return any((cloud.lab.state_dir / host).glob(f"**/dhcp/{BRIDGE}.pid"))


def test_each_host_serves_its_own_instances_of_a_multi_host_network(cloud: Cloud) -> None:
    admin = cloud.service("h3")
    _multi_host_network(admin)
    one = admin.launch_instance("alpha", "one", host="h1").addresses[0]
    admin.modify_network(CIDR, host="h1")
    two = admin.launch_instance("alpha", "two", host="h2").addresses[0]
    three = admin.launch_instance("alpha", "three", host="h2").addresses[0]
    admin.create_floating_range("h1", "203.0.113.100/30", pool="public")
    floating = admin.allocate_floating_ip("alpha", "public").address
    admin.associate_floating_ip(floating, "two")
    cloud.wait_applied()

    gateways = _own_gateways(admin)
    assert sorted(gateways) == ["h1", "h2"]  # h3 has no instance there: no address
    assert f"{gateways['h1']}/24" in cloud.links("h1")[BRIDGE]
    assert cloud.links("h2")[BRIDGE] == [f"{gateways['h2']}/24"]
    assert BRIDGE not in cloud.links("h3")
    assert admin.get_floating_ip(floating).host == "h2"  # NATed where its instance runs

    # A guest on h2 is answered by h2 alone: its router, DNS server and DHCP server are
    # h2's own address, and h1's dnsmasq, on the same segment, sends it nothing.
    guest = _guest(cloud, "h2", "two", two.mac)
    on_h1 = Sniffer(cloud.lab, cloud.ns["h1"], BRIDGE, seconds=8)
    on_h2 = Sniffer(cloud.lab, cloud.ns["h2"], BRIDGE, seconds=8)
    given = lease(cloud.lab, guest)
    sent_by_h1 = [a for a in on_h1.answers() if a["outgoing"]]
    sent_by_h2 = [a for a in on_h2.answers() if a["outgoing"]]
    assert given is not None and given["ip"] == two.address
    assert (given["router"], given["dns"], given["serverid"]) == (gateways["h2"],) * 3
    assert {(a["type"], a["client"], a["router"]) for a in sent_by_h2} == {
        ("OFFER", two.mac, gateways["h2"]),
        ("ACK", two.mac, gateways["h2"]),
    }
    # h1's dnsmasq heard the guest's broadcasts over the segment, and let them be.
    assert sent_by_h1 == []
    assert f"DHCPDISCOVER({BRIDGE}) {two.mac} ignored" in _dnsmasq_log(cloud, "h1")
    # Asked for its address by a guest it does not serve, h1 says nothing (where an
    # authoritative server would NAK it); h2 ACKs.
    on_h1 = Sniffer(cloud.lab, cloud.ns["h1"], BRIDGE, seconds=5)
    answers = reboot_request(guest, two.address, two.mac)
    assert answers == [{"type": "ACK", "server": gateways["h2"]}]
    assert [a for a in on_h1.answers() if a["outgoing"]] == []

    # A guest on h1 keeps h1's own address.
    neighbour = _guest(cloud, "h1", "one", one.mac)
    given = lease(cloud.lab, neighbour)
    assert given is not None and given["ip"] == one.address
    assert (given["router"], given["dns"]) == (gateways["h1"], gateways["h1"])

    # h2's dnsmasq knows every instance of the network by name, wherever it runs.
    assert resolve(guest, gateways["h2"], "one") == ("NOERROR", [one.address])
    # The metadata service on h2 answers h2's guest, h1's answers h1's.
    meta = "http://169.254.169.254/latest/meta-data/"
    assert cloud.lab.fetch(guest, meta + "local-ipv4") == two.address
    assert (cloud.lab.fetch(guest, meta + "hostname") or "").startswith("two")
    assert cloud.lab.fetch(neighbour, meta + "local-ipv4") == one.address

    # Out of h2: a guest with no floating IP leaves from h2's public address, the one
    # with a floating IP from it; the public side reaches the latter through it.
    third = _guest(cloud, "h2", "three", three.mac)
    assert lease(cloud.lab, third) is not None
    cloud.lab.echo_server(cloud.public, PUBLIC_CLIENT)
    outside = f"http://{PUBLIC_CLIENT}:8080/"
    assert cloud.lab.fetch(third, outside) == "203.0.113.12"
    assert cloud.lab.fetch(guest, outside) == floating
    assert cloud.lab.fetch(neighbour, outside) == "203.0.113.11"
    cloud.lab.echo_server(guest, two.address)
    assert cloud.lab.fetch(cloud.public, f"http://{floating}:8080/") == PUBLIC_CLIENT

    # h1's agent dies: nothing h2's guests use was h1's, before h1's heartbeat lease
    # runs out and after, once h1's kernel has taken its addresses away (fencing).
    cloud.kill("h1")
    killed = time.monotonic()
    for moment in ("at once", "after h1's lease"):
        if moment != "at once":
            time.sleep(max(0.0, killed + HOST_DOWN_TIME + 1 - time.monotonic()))
            assert cloud.links("h1")[BRIDGE] == [], "h1 still answers for the network"
        renewed = renew(guest, two.address, gateways["h2"], two.mac)
        assert (renewed["type"], renewed["server"]) == ("ACK", gateways["h2"]), moment
        assert resolve(guest, gateways["h2"], "one") == ("NOERROR", [one.address]), moment
        assert cloud.lab.fetch(guest, outside) == floating, moment
        assert cloud.lab.fetch(third, outside) == "203.0.113.12", moment
        assert cloud.lab.fetch(cloud.public, f"http://{floating}:8080/") == PUBLIC_CLIENT
        assert cloud.lab.fetch(guest, meta + "local-ipv4") == two.address, moment

    # Terminated, two's lease is given back by h2's dnsmasq at once (it ignores only the
    # clients it does not serve, not a release on one's behalf): the address is free.
    admin.terminate_instance("two")
    cloud.wait(
        "two's address free again",
        lambda: _state(admin, two.address) == "free",
    )
    # The last instance on h2 goes: so do h2's address, dnsmasq and the network there.
    admin.terminate_instance("three")
    cloud.wait_applied(("h2", "h3"))
    assert BRIDGE not in cloud.links("h2")
    assert not _dnsmasq_runs(cloud, "h2")
    assert gateways["h2"] not in str(cloud.links("h2"))
    # The address stays h2's, for its next instance there (as nova-network kept it).
    assert _own_gateways(admin)["h2"] == gateways["h2"]


def test_an_evacuated_host_no_longer_serves_and_its_instances_are_served_elsewhere(
    cloud: Cloud,
) -> None:
    admin = cloud.service("h1")
    _multi_host_network(admin)
    admin.launch_instance("alpha", "one", host="h1")
    admin.modify_network(CIDR, host="h1")
    far = admin.launch_instance("alpha", "far", host="h2").addresses[0]
    admin.create_floating_range("h2", "203.0.113.100/30", pool="public")
    floating = admin.allocate_floating_ip("alpha", "public").address
    admin.associate_floating_ip(floating, "far")
    cloud.wait_applied()
    old = _own_gateways(admin)["h2"]
    assert _dnsmasq_runs(cloud, "h2")

    # h2 dies, with its instance: its agent is killed and it drops off both segments.
    cloud.kill("h2")
    for link in ("und0", "pub0"):
        in_ns(cloud.ns["h2"], "ip", "link", "set", link, "down")
    cloud.wait(
        "h2 shown down",
        lambda: not next(h for h in admin.list_hosts() if h.name == "h2").alive,
        timeout=HOST_DOWN_TIME * 4,
    )
    assert "h2" in admin.down_hosts()  # it served a multi-host network's instance
    moved = admin.evacuate_host("h2", to="h3")
    assert moved.instances == (("far", "h3"),)
    assert dict(moved.floating)[floating] == "h3"
    cloud.wait_applied(("h1", "h3"))
    new = _own_gateways(admin)["h3"]
    assert cloud.links("h3")[BRIDGE] == [f"{new}/24"]

    # The instance, rebuilt on h3 with its MAC, gets its address and h3's router, and
    # the public side reaches it through its floating IP, now on h3.
    guest = _guest(cloud, "h3", "far", far.mac)
    given = lease(cloud.lab, guest)
    assert given is not None and (given["ip"], given["router"]) == (far.address, new)
    cloud.lab.echo_server(guest, far.address)
    assert cloud.lab.fetch(cloud.public, f"http://{floating}:8080/") == PUBLIC_CLIENT

    # h2 comes back: it finds it serves nothing of the network and takes it all down.
    for link in ("und0", "pub0"):
        in_ns(cloud.ns["h2"], "ip", "link", "set", link, "up")
    cloud.start("h2")
    cloud.wait_applied(("h2",))
    cloud.wait("h2 to take the network down", lambda: BRIDGE not in cloud.links("h2"))
    assert not _dnsmasq_runs(cloud, "h2")
    assert old not in str(cloud.links("h2"))
    assert floating not in str(cloud.links("h2"))


def test_a_bridge_keeps_its_address_when_a_port_with_a_lower_one_arrives(
    lab: Lab, tmp_path: Path
) -> None:
    # Every host with instances routes for them from its bridge: a bridge that took the
    # lowest address of its ports would change it under its guests' ARP entries as
    # instances are plugged, and their traffic to it would no longer be the host's.
    host = network_host(lab, tmp_path)
    host.service.create_networks(CIDR, 1, 256, 120, 1020, multi_host=True)
    host.service.create_project("alpha")
    vm = host.service.launch_instance("alpha", "vm1").addresses[0]
    host.sync.sync()

    def address() -> tuple[str, str]:
        sysfs = f"/sys/class/net/{BRIDGE}"
        found = in_ns(host.ns, "cat", f"{sysfs}/address", f"{sysfs}/addr_assign_type")
        mac, assigned = found.stdout.split()
        return mac, assigned

    before, assigned = address()
    assert assigned == "3"  # NET_ADDR_SET: given, not taken from a port
    guest = host.instance("vm1", vm.mac, BRIDGE)
    in_ns(
        host.ns,
        "ip",
        "link",
        "set",
        f"tap{vm.mac.replace(':', '')}",
        "address",
        "00:00:5e:00:53:01",
    )
    assert address() == (before, "3")
    assert lab.dhcp_client(guest) == vm.address
    assert (lease(lab, guest) or {}).get("router") == _own_gateways(host.service)["nethost"]
