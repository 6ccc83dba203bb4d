"""Hairpin across the segment: two instances on a compute host reach each other's
floating IPs, NATed on the network host they both reach through the segment (a VXLAN
for a VLAN network, the ``flat_interface`` uplink for a FlatDHCP one)."""

from __future__ import annotations

from pathlib import Path

from core.linux.ports import port_name
from core.service import NetconService
from core.service.hostsync import HostSync
from tests.host.conftest import Lab, in_ns
from tests.host.scenario import PUBLIC_CLIENT, NetworkHost, network_host
from tests.host.test_nat import _named_server


def _two_hosts(lab: Lab, tmp_path: Path, **settings: str) -> tuple[NetworkHost, str]:
    host = network_host(lab, tmp_path, **settings)
    compute = lab.netns("cmp")
    # The underlay between the two hosts, and a second pair of links a flat network is
    # bridged over.
    in_ns(host.ns, "ip", "link", "del", "und0")
    lab.veth(host.ns, "und0", compute, "und0")
    lab.address(host.ns, "und0", "192.168.90.1/24")
    lab.address(compute, "und0", "192.168.90.2/24")
    lab.veth(host.ns, "flat0", compute, "flat0")
    return host, compute


def _hairpin_through_the_network_host(lab: Lab, tmp_path: Path, *, flatdhcp: bool) -> None:
    uplink = {"flat_interface": "flat0"} if flatdhcp else {}
    host, compute = _two_hosts(lab, tmp_path, **uplink)
    service = host.service
    project = "ops" if flatdhcp else "alpha"
    if flatdhcp:
        service.create_project(project, manager="flatdhcp")
        service.create_networks("10.94.0.0/24", 1, 256, manager="flatdhcp", bridge="brdhcp")
    else:
        service.create_project(project)
        service.create_networks("10.95.0.0/24", 1, 256, 140)
    service.create_floating_range("nethost", "203.0.113.30-203.0.113.39")
    service.add_security_group_rule(project, "default", "tcp", 8080, 8080)
    for name in ("nethost", "cmphost"):
        service.heartbeat(name)
    service.modify_network(service.list_networks()[0].cidr, host="nethost")
    vms = {
        name: service.launch_instance(project, name, host="cmphost").addresses[0]
        for name in ("vma", "vmb", "bare")
    }
    network = service.list_networks()[0]
    assert network.host == "nethost"
    floating = {}
    for name in ("vma", "vmb"):
        floating[name] = service.allocate_floating_ip(project).address
        service.associate_floating_ip(floating[name], name)
    host.sync.sync()
    compute_service = NetconService(
        service.db.url, service.settings.replace(host="cmphost", netns=compute)
    )
    compute_layer = HostSync(compute_service)
    try:
        compute_layer.sync()
        guests = {}
        for name, vm in vms.items():
            guests[name] = lab.netns(name)
            lab.plug(compute, port_name(vm.mac), network.bridge, guests[name], vm.mac)
            assert lab.dhcp_client(guests[name]) == vm.address
            _named_server(lab, guests[name], name)

        def reach(client: str, address: str) -> str | None:
            return lab.fetch(guests[client], f"http://{address}:8080/")

        fa, fb = floating["vma"], floating["vmb"]
        # A neighbour's floating IP: its frames go to the network host through the
        # segment and come back through it, and the server sees the client's floating IP.
        assert reach("vma", fb) == f"vmb {fa}"
        assert reach("vmb", fa) == f"vma {fb}"
        # Its own floating IP, and from a client with no floating IP (the gateway).
        assert reach("vma", fa) == f"vma {fa}"
        assert reach("bare", fb) == f"vmb {network.gateway}"
        # The public side still sees its own address.
        assert lab.fetch(host.public, f"http://{fb}:8080/") == f"vmb {PUBLIC_CLIENT}"
        # No guest's MAC was learnt behind the uplink on the compute host: what came back
        # through it came from netcon's hairpin MAC, and no flooded frame was reflected.
        uplink = "flat0" if flatdhcp else "vx140"
        learnt = in_ns(compute, "bridge", "fdb", "show", "br", network.bridge).stdout
        behind = {line.split()[0] for line in learnt.splitlines() if f"dev {uplink} master" in line}
        assert not behind & {vm.mac for vm in vms.values()}, learnt
        assert "hairpin on" in in_ns(host.ns, "ip", "-d", "link", "show", uplink).stdout
        assert compute_layer.plan().operations == ()
        assert host.sync.plan().operations == ()
    finally:
        compute_layer.close()


def test_instances_behind_a_vxlan_segment_reach_each_others_floating_ips(
    lab: Lab, tmp_path: Path
) -> None:
    _hairpin_through_the_network_host(lab, tmp_path, flatdhcp=False)


def test_instances_behind_a_flat_uplink_reach_each_others_floating_ips(
    lab: Lab, tmp_path: Path
) -> None:
    _hairpin_through_the_network_host(lab, tmp_path, flatdhcp=True)
