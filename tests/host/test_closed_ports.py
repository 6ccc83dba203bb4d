"""Fail closed on netcon's bridges, proved from guests: a terminated instance's port
that is still plugged, and a port whose MAC no row holds, pass no frame either way (no
DHCP, no ARP reaching a neighbour, nothing routed to the public side), while the current
instance beside them works; `host plan` names both; a trusted port passes."""

from __future__ import annotations

from pathlib import Path

from core.linux.ports import port_name
from tests.host.conftest import Lab, in_ns
from tests.host.guests import lease
from tests.host.probes import Recorder, probe, send_arp_reply, send_udp
from tests.host.scenario import PUBLIC_CLIENT, network_host

CIDR, GATEWAY = "10.96.0.0/24", "10.96.0.1"
STRANGER_MAC = "fa:16:3e:5e:5e:5e"
TRUSTED_MAC = "02:00:00:96:00:07"
BROADCAST = "ff:ff:ff:ff:ff:ff"


def test_unknown_and_terminated_ports_pass_nothing_and_a_trusted_one_passes(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path, trusted_ports=("trust0",))
    service = host.service
    service.create_project("alpha")
    service.create_networks(CIDR, 1, 256)
    service.add_security_group_rule("alpha", "default", "udp", 9999, 9999)
    web = service.launch_instance("alpha", "web").addresses[0]
    gone = service.launch_instance("alpha", "gone").addresses[0]
    host.sync.sync()
    bridge = service.list_networks()[0].bridge

    web_ns = host.instance("web", web.mac, bridge)
    gone_ns = host.instance("gone", gone.mac, bridge)
    assert lab.dhcp_client(web_ns) == web.address
    assert lab.dhcp_client(gone_ns) == gone.address  # its port passes while it is current
    in_ns(web_ns, "ip", "route", "replace", "default", "via", GATEWAY)

    service.terminate_instance("gone")
    host.sync.sync()
    stranger_ns = host.instance("stranger", STRANGER_MAC, bridge)
    closed = {
        "gone": (gone_ns, gone.mac, gone.address),
        "stranger": (stranger_ns, STRANGER_MAC, "10.96.0.200"),
    }

    # Read once every port is in: a bridge takes the lowest MAC of its ports.
    bridge_mac = in_ns(host.ns, "cat", f"/sys/class/net/{bridge}/address").stdout.strip()
    neighbour = Recorder(lab, web_ns, "eth0", tmp_path / "neighbour.txt")
    public = Recorder(lab, host.public, "eth0", tmp_path / "public.txt")
    for name, (ns, mac, address) in closed.items():
        assert lease(lab, ns) is None, name
        in_ns(ns, "ip", "addr", "replace", f"{address}/24", "dev", "eth0")
        send_udp(ns, mac, web.mac, address, web.address, 9999, f"{name}-unicast")
        send_udp(ns, mac, BROADCAST, address, "10.96.0.255", 9999, f"{name}-broadcast")
        send_udp(ns, mac, bridge_mac, address, PUBLIC_CLIENT, 9999, f"{name}-public")
        # "web's address is at my MAC": what poisoned the gateway's ARP entry before.
        send_arp_reply(ns, mac, BROADCAST, mac, web.address, GATEWAY)
        assert probe(ns, [("icmp", GATEWAY, 8), ("icmp", web.address, 8)]) == [False, False]
    # The current instance on the same bridge gets through to the public side.
    send_udp(web_ns, web.mac, bridge_mac, web.address, PUBLIC_CLIENT, 9999, "web-public")
    heard = neighbour.lines() + public.lines()
    assert [line for line in heard if "gone" in line or "stranger" in line] == []
    assert not [line for line in heard if gone.mac in line or STRANGER_MAC in line]
    assert [line.split()[-1] for line in public.lines() if "web-public" in line] == ["web-public"]
    # Neither the gateway nor web learnt anything from them.
    for ns in (host.ns, web_ns):
        neighbours = in_ns(ns, "ip", "neigh", "show").stdout
        assert gone.mac not in neighbours and STRANGER_MAC not in neighbours, neighbours
    assert lab.dhcp_client(web_ns) == web.address

    # `host plan` names both ports, and has nothing to do about them.
    planned = service.host_plan()
    assert planned.operations == ()
    named = " ".join(planned.warnings)
    assert port_name(gone.mac) in named and port_name(STRANGER_MAC) in named
    assert len(planned.warnings) == 2

    # A trusted port passes, though no instance owns it.
    trusted_ns = lab.netns("trusted")
    lab.plug(host.ns, "trust0", bridge, trusted_ns, TRUSTED_MAC)
    in_ns(trusted_ns, "ip", "addr", "add", "10.96.0.201/24", "dev", "eth0")
    assert probe(trusted_ns, [("icmp", GATEWAY, 8)]) == [True]
    assert len(service.host_plan().warnings) == 2

    # Unplugged, the terminated instance's port is no longer named.
    in_ns(host.ns, "ip", "link", "del", port_name(gone.mac))
    assert [port_name(STRANGER_MAC) in notice for notice in service.host_plan().warnings] == [True]
