"""Floating IPs and isolation for real: HTTP across the NAT, and between projects."""

from __future__ import annotations

import sys
from pathlib import Path

from core.linux import nft
from core.linux.operations import (
    AddAddress,
    AddNatElement,
    DeleteAddress,
    DeleteNatElement,
    SetHairpin,
)
from core.linux.ports import port_name
from tests.host.conftest import Lab, in_ns
from tests.host.scenario import PUBLIC_CLIENT, network_host

FLOATING = "203.0.113.10"


def test_floating_ip_carries_http_both_ways(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.30.0.0/24", 1, 256)
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    service.create_floating_range("nethost", "203.0.113.10-203.0.113.12")
    host.sync.sync()
    bridge = service.list_networks()[0].bridge
    instance = host.instance("vm1", vm.mac, bridge)
    assert lab.dhcp_client(instance) == vm.address

    address = service.allocate_floating_ip("alpha").address
    assert address == FLOATING
    service.associate_floating_ip(address, "vm1")
    # One association is one address on the public interface and one NAT element.
    change = host.sync.sync().operations
    assert change == (
        AddAddress("pub0", FLOATING, 32, None, "netcon-fip"),
        AddNatElement(FLOATING, vm.address),
    )

    lab.echo_server(instance, "0.0.0.0", 8080)
    lab.echo_server(host.public, PUBLIC_CLIENT, 8081)
    # The default group lets in only its own members: the public side is refused...
    assert lab.fetch(host.public, f"http://{FLOATING}:8080/") is None
    service.add_security_group_rule("alpha", "default", "tcp", 8080, 8080)
    host.sync.sync()
    # ...until a rule opens the port. Inbound: the public side reaches the instance
    # through its floating IP.
    assert lab.fetch(host.public, f"http://{FLOATING}:8080/") == PUBLIC_CLIENT
    # Outbound: the instance leaves with the floating IP as its source.
    assert lab.fetch(instance, f"http://{PUBLIC_CLIENT}:8081/") == FLOATING
    assert host.sync.plan().operations == ()

    service.disassociate_floating_ip(address)
    assert host.sync.sync().operations == (
        DeleteAddress("pub0", FLOATING, 32),
        DeleteNatElement(FLOATING, vm.address),
    )
    assert lab.fetch(host.public, f"http://{FLOATING}:8080/") is None
    state = nft.Nft("nft", host.ns).observe()
    assert state.dnat == {} and state.snat == {}
    # Without a floating IP the instance still gets out, masqueraded as the host.
    assert lab.fetch(instance, f"http://{PUBLIC_CLIENT}:8081/") == "203.0.113.2"


def test_projects_cannot_reach_each_other(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_networks("10.40.0.0/16", 2, 256)
    service.create_project("alpha")
    service.create_project("beta")
    a = service.launch_instance("alpha", "vma").addresses[0]
    b = service.launch_instance("beta", "vmb").addresses[0]
    a2 = service.launch_instance("alpha", "vma2").addresses[0]
    host.sync.sync()
    bridges = {n.cidr: n.bridge for n in service.list_networks()}
    ns_a = host.instance("vma", a.mac, bridges[a.network])
    ns_b = host.instance("vmb", b.mac, bridges[b.network])
    assert lab.dhcp_client(ns_a) == a.address
    assert lab.dhcp_client(ns_b) == b.address
    ns_a2 = host.instance("vma2", a2.mac, bridges[a2.network])
    assert lab.dhcp_client(ns_a2) == a2.address
    lab.echo_server(ns_a2, a2.address, 8080)
    lab.echo_server(ns_b, b.address, 8080)
    lab.echo_server(host.public, PUBLIC_CLIENT, 8081)
    # beta's port 8080 is open to everyone: only isolation keeps alpha out.
    service.add_security_group_rule("beta", "default", "tcp", 8080, 8080)
    host.sync.sync()

    # Both reach the outside, neither reaches the other project.
    assert lab.fetch(ns_a, f"http://{PUBLIC_CLIENT}:8081/") == "203.0.113.2"
    assert lab.fetch(ns_a, f"http://{b.address}:8080/") is None
    # Within a project the bridge still carries traffic (br_netfilter sends it
    # through the forward hook too).
    assert lab.fetch(ns_a, f"http://{a2.address}:8080/") == a.address
    # The network host itself (not a project) still reaches beta's open port.
    assert lab.fetch(host.ns, f"http://{b.address}:8080/") is not None
    assert in_ns(host.ns, "nft", "list", "set", "ip", "netcon", "isolated").returncode == 0


def _named_server(lab: Lab, ns: str, name: str, port: int = 8080) -> None:
    """An HTTP server that answers every GET with its own name and the address the
    connection came from: which server a client reached, and as whom."""
    program = (
        "import http.server, sys\n"
        "class Echo(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        f"        body = ('{name} ' + self.client_address[0]).encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def log_message(self, *args):\n"
        "        pass\n"
        f"http.server.HTTPServer(('0.0.0.0', {port}), Echo).serve_forever()\n"
    )
    lab.start(ns, sys.executable, "-c", program)
    lab.wait_listening(ns, port)


def test_instances_reach_their_own_and_their_neighbours_floating_ips(
    lab: Lab, tmp_path: Path
) -> None:
    """Hairpin: a connection from an instance to a floating IP of its network host (its
    own, a neighbour's on its bridge, another project's on another bridge) reaches the
    server behind it, which sees it come from the client's floating IP, or from the
    gateway when the client has none; the fixed addresses stay isolated."""
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_networks("10.40.0.0/16", 2, 256)
    service.create_floating_range("nethost", "203.0.113.10-203.0.113.19")
    vms = {}
    for project, names in (("alpha", ("vm1", "vm2", "bare")), ("beta", ("vm3",))):
        service.create_project(project)
        service.add_security_group_rule(project, "default", "tcp", 8080, 8080)
        for name in names:
            vms[name] = service.launch_instance(project, name).addresses[0]
    floating = {}
    for name in ("vm1", "vm2", "vm3"):
        project = "beta" if name == "vm3" else "alpha"
        floating[name] = service.allocate_floating_ip(project).address
        service.associate_floating_ip(floating[name], name)
    host.sync.sync()
    networks = {n.cidr: n for n in service.list_networks()}
    guests = {}
    for name, vm in vms.items():
        # vm1's compute side leaves its port out of hairpin mode: the apply sets it.
        hairpin = name != "vm1"
        guests[name] = host.instance(name, vm.mac, networks[vm.network].bridge, hairpin=hairpin)
        assert lab.dhcp_client(guests[name]) == vm.address
        _named_server(lab, guests[name], name)
    assert host.sync.sync().operations == (SetHairpin(port_name(vms["vm1"].mac)),)

    def reach(client: str, address: str) -> str | None:
        return lab.fetch(guests[client], f"http://{address}:8080/")

    f1, f2, f3 = floating["vm1"], floating["vm2"], floating["vm3"]
    # Its own floating IP: the server is itself, and the request comes from that address.
    assert reach("vm1", f1) == f"vm1 {f1}"
    # A neighbour's on the same bridge, and another project's on another bridge.
    assert reach("vm1", f2) == f"vm2 {f1}"
    assert reach("vm1", f3) == f"vm3 {f1}"
    assert reach("vm3", f1) == f"vm1 {f3}"
    # A client with no floating IP comes from its network's gateway.
    gateway = networks[vms["bare"].network].gateway
    assert reach("bare", f2) == f"vm2 {gateway}"
    # The public side still sees its own address, and the fixed addresses of another
    # project stay out of reach.
    assert lab.fetch(host.public, f"http://{f1}:8080/") == f"vm1 {PUBLIC_CLIENT}"
    assert reach("vm1", vms["vm3"].address) is None
    assert host.sync.plan().operations == ()
