"""Fencing that holds when the agent is dead: two network hosts on one PostgreSQL, each
with its own `netcon agent` process, a guest on the second plugged into a network the
first serves, and the first host's agent killed (SIGKILL, as a crash or the OOM killer
does), paused (SIGSTOP) or stopped by its unit (SIGTERM).

By the time the peers may declare the host dead (its heartbeat older than
host_down_time) the kernel has taken its gateway and floating addresses away, so
neither ARP nor DHCP is answered from there (seen from the guest), and its VPN tap
bridges nothing into the network any more. After the host is
evacuated only the new host answers, and when the first agent comes back (resumed, or
started again as its unit's Restart=always does) it never brings them back, not even
for a moment, before it has read where they went.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from core.linux.ports import port_name
from tests.host.agents import HOST_DOWN_TIME, PUBLIC_CLIENT, Cloud
from tests.host.conftest import Lab, in_ns
from tests.host.sniff import AddressWatch, Listening, answers

pytestmark = pytest.mark.postgres

SERVING, OTHER = "h1", "h2"
CIDR, GATEWAY, VLAN, BRIDGE = "10.57.0.0/24", "10.57.0.1", 157, "br157"
FLOATING = "203.0.113.157"
# What a project VPN's server bridges into the network: its tap (here a veth of that name,
# its far end standing for a connected VPN client).
VPN_TAP, VPN_MAC, VPN_CLIENT = "tapvpn157", "02:00:00:57:00:fa", "10.57.0.250"


@pytest.fixture
def cloud(lab: Lab, pg_url: str, tmp_path: Path) -> Cloud:
    built = Cloud(lab, pg_url, tmp_path)
    built.service().db.dispose()
    for name in (SERVING, OTHER):
        built.start(name)
    built.wait_alive((SERVING, OTHER))
    return built


def _bridge_mac(cloud: Cloud, host: str) -> str:
    return in_ns(cloud.ns[host], "cat", f"/sys/class/net/{BRIDGE}/address").stdout.strip()


def _addresses(cloud: Cloud, host: str) -> dict[str, list[str]]:
    links = cloud.links(host)
    return {name: links.get(name, []) for name in (BRIDGE, "pub0")}


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP", "SIGTERM"])
def test_a_host_whose_agent_died_stops_answering_within_its_lease(
    cloud: Cloud, lab: Lab, tmp_path: Path, fault: str
) -> None:
    admin = cloud.service(OTHER)
    admin.create_networks(CIDR, 1, 256, VLAN, 11957)
    admin.create_project("eta")
    admin.add_security_group_rule("eta", "default", "tcp", 8080, 8080)
    vm = admin.launch_instance("eta", "e1", host=OTHER).addresses[0]
    admin.modify_network(CIDR, host=SERVING)
    admin.create_floating_range(SERVING, f"{FLOATING}/32", pool="public")
    admin.associate_floating_ip(admin.allocate_floating_ip("eta", "public").address, "e1")
    cloud.wait_applied((SERVING, OTHER))
    served = time.monotonic()

    guest = lab.netns("eta")
    lab.plug(cloud.ns[OTHER], port_name(vm.mac), BRIDGE, guest, vm.mac)
    assert lab.dhcp_client(guest) == vm.address
    in_ns(guest, "ip", "route", "replace", "default", "via", GATEWAY)
    lab.echo_server(guest, vm.address)
    assert lab.fetch(cloud.public, f"http://{FLOATING}:8080/") == PUBLIC_CLIENT
    vpn_client = lab.netns("vpn")
    lab.plug(cloud.ns[SERVING], VPN_TAP, BRIDGE, vpn_client, VPN_MAC)
    in_ns(vpn_client, "ip", "addr", "add", f"{VPN_CLIENT}/24", "dev", "eth0")
    old, new = _bridge_mac(cloud, SERVING), _bridge_mac(cloud, OTHER)
    assert answers(guest, vm.mac, vm.address, GATEWAY) == {f"arp {old}", f"dhcp {old}"}
    assert f"{FLOATING}/32" in _addresses(cloud, SERVING)["pub0"]
    # The VPN's tap reaches the guest, for as long as the lease: its element times out.
    assert f"arp {vm.mac}" in answers(vpn_client, VPN_MAC, VPN_CLIENT, vm.address)
    own = in_ns(cloud.ns[SERVING], "nft", "list", "set", "bridge", "netcon", "own_ports").stdout
    assert f'"{VPN_TAP}" timeout' in own

    # A live agent renews the lease: past host_down_time since the addresses came up,
    # they are still there, with a lifetime (never forever).
    time.sleep(max(0.0, served + HOST_DOWN_TIME + 1 - time.monotonic()))
    shown = in_ns(cloud.ns[SERVING], "ip", "-4", "addr", "show", "dev", BRIDGE).stdout
    assert f"{GATEWAY}/24" in shown and "valid_lft forever" not in shown

    agent = cloud.agents[SERVING]
    struck = time.monotonic()
    agent.send_signal(getattr(signal, fault))
    if fault != "SIGSTOP":
        agent.wait(30)
        del cloud.agents[SERVING]

    # host_down_time plus a second after its last heartbeat could have been sent: the
    # kernel has taken gateway and floating address away, nobody answers the guest yet.
    time.sleep(max(0.0, struck + HOST_DOWN_TIME + 1 - time.monotonic()))
    assert _addresses(cloud, SERVING) == {BRIDGE: [], "pub0": ["203.0.113.11/24"]}
    assert answers(guest, vm.mac, vm.address, GATEWAY) == set()
    assert answers(vpn_client, VPN_MAC, VPN_CLIENT, vm.address) == set()

    moved = admin.evacuate_host(SERVING, to=OTHER)
    assert moved.networks == ((CIDR, OTHER),)
    cloud.wait_applied((OTHER,))
    assert f"{GATEWAY}/24" in _addresses(cloud, OTHER)[BRIDGE]
    only_new = {f"arp {new}", f"dhcp {new}"}
    assert answers(guest, vm.mac, vm.address, GATEWAY) == only_new
    assert lab.dhcp_client(guest) == vm.address
    assert lab.fetch(cloud.public, f"http://{FLOATING}:8080/") == PUBLIC_CLIENT

    # The first agent comes back (resumed, or started again by its unit): it stops
    # serving before it heartbeats, reads where its network went, and takes down what is
    # left of it here without ever bringing an address back.
    watch = AddressWatch(lab, cloud.ns[SERVING], tmp_path / "addresses.txt")
    listening = Listening(guest, vm.mac, vm.address, GATEWAY, seconds=8)
    if fault == "SIGSTOP":
        agent.send_signal(signal.SIGCONT)
    else:
        cloud.start(SERVING)
    cloud.wait(
        f"{SERVING} to take down what it no longer serves",
        lambda: BRIDGE not in cloud.links(SERVING),
    )
    cloud.wait_applied((SERVING, OTHER))
    assert listening.result() == only_new
    assert [line for line in watch.added() if GATEWAY in line or FLOATING in line] == []
    assert _addresses(cloud, SERVING)["pub0"] == ["203.0.113.11/24"]
    if fault == "SIGSTOP":
        assert "heartbeat lease expired" in cloud.log(SERVING)
