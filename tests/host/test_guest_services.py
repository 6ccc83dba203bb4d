"""What a guest gets from its network host, seen from inside guest namespaces: DNS for
its neighbours' names and the outside world, the network's MTU, and leases that a
dnsmasq restart does not lose, answered only by the guest's own network's dnsmasq."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.linux.operations import ReleaseLeases, SetHairpin, SetMtu, StartDnsmasq
from core.linux.ports import port_name
from tests.host.conftest import Lab, in_ns
from tests.host.guests import lease, renew, resolve, reverse_name, upstream_resolver
from tests.host.scenario import network_host


def _wait_resolves(ns: str, server: str, name: str) -> tuple[str, list[str]]:
    deadline = time.monotonic() + 10
    while True:
        found = resolve(ns, server, name)
        if found[0] != "TIMEOUT" or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_guests_resolve_neighbours_and_the_outside_through_their_dnsmasq(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path, dns_servers=["198.51.100.2"])
    assert upstream_resolver(lab, host.ns) == "198.51.100.2"
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks("10.30.0.0/24", 1, 256)
    web = service.launch_instance("alpha", "web1").addresses[0]
    db = service.launch_instance("alpha", "db1").addresses[0]
    host.sync.sync()
    gateway = network.gateway

    guest = host.instance("db1", db.mac, network.bridge)
    given = lease(lab, guest)
    assert given is not None and given["ip"] == db.address
    # No dns1/dns2: the guest is told its network's own dnsmasq, and its domain.
    assert given["dns"].split() == [gateway]
    assert given["domain"] == "novalocal"

    # web1 has never leased (it is not even plugged in): its name is known all the same.
    assert _wait_resolves(guest, gateway, "web1") == ("NOERROR", [web.address])
    assert resolve(guest, gateway, "web1.novalocal") == ("NOERROR", [web.address])
    assert resolve(guest, gateway, reverse_name(web.address), "PTR") == (
        "NOERROR",
        ["web1.novalocal"],
    )
    # A name in the network's domain that no instance has does not exist; it is never
    # asked upstream.
    assert resolve(guest, gateway, "ghost.novalocal") == ("NXDOMAIN", [])
    assert resolve(guest, gateway, "ghost")[0] == "NXDOMAIN"
    # Everything else goes to the configured upstream, which the test runs.
    assert resolve(guest, gateway, "www.example.test") == ("NOERROR", ["192.0.2.7"])

    # A launch and a terminate change the names through the plan: the names file is
    # rewritten and dnsmasq re-reads it on SIGHUP.
    app = service.launch_instance("alpha", "app1").addresses[0]
    service.terminate_instance("web1")
    described = host.sync.sync().describe()
    assert any(d.startswith(f"reload dnsmasq for {network.bridge}") for d in described)
    assert resolve(guest, gateway, "app1.novalocal") == ("NOERROR", [app.address])
    assert resolve(guest, gateway, "web1.novalocal") == ("NXDOMAIN", [])

    # A restarted dnsmasq answers the names at once, before any guest leases again.
    pid = host.layer.observe().dnsmasq[network.bridge].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert [type(op) for op in host.sync.sync().operations] == [StartDnsmasq]
    assert _wait_resolves(guest, gateway, "app1") == ("NOERROR", [app.address])
    assert host.sync.plan().operations == ()


def test_a_network_with_its_own_dns_servers_hands_those_out(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha", manager="flatdhcp")
    (network,) = service.create_networks(
        "10.31.0.0/24", 1, 256, manager="flatdhcp", bridge="brdhcp"
    )
    # FlatDHCP guests get their network's dnsmasq too, not a public resolver...
    assert network.dns1 is None
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    host.sync.sync()
    guest = host.instance("vm1", vm.mac, network.bridge)
    given = lease(lab, guest)
    assert given is not None and given["dns"].split() == [network.gateway]
    # ...unless the network names its own.
    service.modify_network(network.cidr, dns1="192.0.2.53", dns2="192.0.2.54")
    host.sync.sync()
    given = lease(lab, guest)
    assert given is not None and given["dns"].split() == ["192.0.2.53", "192.0.2.54"]
    assert host.sync.plan().operations == ()


def test_guests_get_the_network_mtu_and_full_size_tcp_crosses_vxlan(
    lab: Lab, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from core.service import NetconService
    from core.service.hostsync import HostSync
    from core.store.schema import instances

    host = network_host(lab, tmp_path)
    compute = lab.netns("cmp")
    in_ns(host.ns, "ip", "link", "del", "und0")
    lab.veth(host.ns, "und0", compute, "und0")
    lab.address(host.ns, "und0", "192.168.90.1/24")
    lab.address(compute, "und0", "192.168.90.2/24")
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks("10.51.0.0/24", 1, 256)
    near = service.launch_instance("alpha", "near").addresses[0]
    far = service.launch_instance("alpha", "far").addresses[0]
    with service.db.write() as session:
        session.execute(update(instances).where(instances.c.name == "far").values(host="cmphost"))

    host.sync.sync()
    # A port plugged at 1500 (as a plain veth comes): the next apply brings it to 1450
    # (and, on the host that routes for it, to hairpin mode).
    near_ns = lab.netns("near")
    lab.veth(near_ns, "eth0", host.ns, port_name(near.mac), mac_a=near.mac)
    in_ns(host.ns, "ip", "link", "set", port_name(near.mac), "master", network.bridge)
    assert host.sync.sync().operations == (
        SetMtu(port_name(near.mac), 1450),
        SetHairpin(port_name(near.mac)),
    )
    compute_service = NetconService(
        service.db.url, service.settings.replace(host="cmphost", netns=compute)
    )
    compute_layer = HostSync(compute_service)
    compute_layer.sync()
    far_ns = lab.netns("far")
    lab.plug(compute, port_name(far.mac), network.bridge, far_ns, far.mac)

    def mtu(ns: str, ifname: str) -> int:
        return int(in_ns(ns, "cat", f"/sys/class/net/{ifname}/mtu").stdout)

    for ns in (host.ns, compute):
        assert mtu(ns, network.bridge) == 1450 and mtu(ns, "vx100") == 1450
    assert mtu(host.ns, port_name(near.mac)) == 1450

    # Option 26 reaches the guests, which set their interface by it.
    for ns, vm in ((near_ns, near), (far_ns, far)):
        given = lease(lab, ns)
        assert given is not None and given["ip"] == vm.address and given["mtu"] == "1450"
        assert mtu(ns, "eth0") == 1450

    # A full-size TCP stream (segments of the whole MTU) between the two hosts: every
    # byte arrives.
    size = 4 << 20
    receiver = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            near_ns,
            sys.executable,
            "-c",
            "import socket, hashlib\n"
            f"s = socket.socket(); s.bind(('{near.address}', 9000)); s.listen(1)\n"
            "print('ready', flush=True)\n"
            "c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0\n"
            "while (b := c.recv(65536)):\n    h.update(b); n += len(b)\n"
            "print(n, h.hexdigest(), flush=True)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    lab.processes.append(receiver)
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    sent = in_ns(
        far_ns,
        sys.executable,
        "-c",
        "import socket, hashlib, os\n"
        f"data = os.urandom({size}); c = socket.create_connection(('{near.address}', 9000), 5)\n"
        "c.settimeout(20); c.sendall(data)\n"
        "mss = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)\n"
        "print(mss, hashlib.sha256(data).hexdigest())\n"
        "c.close()\n",
        timeout=60,
    ).stdout.split()
    count, digest = receiver.stdout.readline().split()
    assert int(count) == size and digest == sent[1]
    # Segments as large as the MTU allows (1450 less IP and TCP headers, less the
    # timestamp option when it is on): the stream did use full-size packets.
    assert 1450 - 40 - 12 <= int(sent[0]) <= 1450 - 40
    assert host.sync.plan().operations == ()
    assert compute_layer.plan().operations == ()
    compute_layer.close()


def _restart_under(host, bridge: str) -> None:  # type: ignore[no-untyped-def]
    pid = host.layer.observe().dnsmasq[bridge].pid
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [type(op) for op in host.sync.sync().operations] == [StartDnsmasq]


def test_a_restarted_dnsmasq_acks_a_renewal_at_once(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks("10.32.0.0/24", 1, 256)
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    host.sync.sync()
    guest = host.instance("vm1", vm.mac, network.bridge)
    given = lease(lab, guest)
    assert given is not None and given["ip"] == vm.address
    deadline = time.monotonic() + 10
    while not _leased(service, vm.address) and time.monotonic() < deadline:
        time.sleep(0.1)

    _restart_under(host, network.bridge)
    # The new dnsmasq learnt the lease from the database: the apply wrote what it read
    # beside the hosts file, and dnsmasq started from that file (no process ran for it).
    leases = host.layer.dhcp_dir / f"{network.bridge}.leases"
    written = leases.read_text().split()
    assert written[1:] == [vm.mac, vm.address, "vm1", "*"]
    assert int(written[0]) > time.time() + 100  # a whole lease time (120 s) from the start
    argv = host.layer.observe().dnsmasq[network.bridge].argv
    assert f"--dhcp-leasefile={leases}" in argv and "--leasefile-ro" not in argv
    # Its renewals are of a lease the database is known to hold: no Python for them.
    known = (host.layer.dhcp_dir / f"{network.bridge}.leased").read_text()
    assert known == f"{vm.mac} {vm.address}\n"
    answer = renew(guest, vm.address, network.gateway, vm.mac)
    assert answer["type"] == "ACK" and answer["yiaddr"] == vm.address
    assert answer["server"] == network.gateway
    assert float(answer["seconds"]) < 1  # type: ignore[arg-type]
    # udhcpc itself renewing against the restarted server keeps its address.
    _restart_under(host, network.bridge)
    again = lease(lab, guest)
    assert again is not None and again["ip"] == vm.address
    assert host.sync.plan().operations == ()

    # What only a dnsmasq that knows the lease can do: give it back when the instance
    # is terminated after a restart (else the address stays held for a lease time).
    _restart_under(host, network.bridge)
    service.terminate_instance("vm1")
    assert any(isinstance(op, ReleaseLeases) for op in host.sync.sync().operations)
    deadline = time.monotonic() + 10
    while _leased(service, vm.address) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _leased(service, vm.address)


def _leased(service, address: str) -> bool:  # type: ignore[no-untyped-def]
    return any(f.leased for f in service.list_fixed_ips(search=address).rows)


def test_each_dnsmasq_answers_only_its_own_bridge(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_project("beta")
    first, second = service.create_networks("10.33.0.0/23", 2, 256)
    a = service.launch_instance("alpha", "a1").addresses[0]
    b = service.launch_instance("beta", "b1").addresses[0]
    host.sync.sync()
    by_cidr = {n.cidr: n for n in service.list_networks()}
    guests = []
    for name, vm in (("a1", a), ("b1", b)):
        net = by_cidr[vm.network]
        ns = host.instance(name, vm.mac, net.bridge)
        given = lease(lab, ns)
        assert given is not None and given["ip"] == vm.address
        guests.append((ns, vm, net))
    # Both daemons listen on port 67 of the same host: each renewal must reach the
    # dnsmasq of the guest's own bridge (another network's would NAK it or stay silent).
    for _ in range(4):
        for ns, vm, net in guests:
            answer = renew(ns, vm.address, net.gateway, vm.mac)
            assert answer["type"] == "ACK" and answer["server"] == net.gateway, answer
    assert host.sync.plan().operations == ()


def test_reverse_names_of_a_network_subnet_are_answered_there_and_never_forwarded(
    lab: Lab, tmp_path: Path
) -> None:
    """PTR questions about a network's own subnet, whatever its size, are its dnsmasq's
    to answer: a known instance by name, anything else NXDOMAIN, and the upstream
    resolver (which records every query it gets) never hears of them. Addresses beside
    the subnet still go upstream."""
    record = lab.state_dir / "upstream-queries.log"
    host = network_host(lab, tmp_path, dns_servers=["198.51.100.2"])
    upstream_resolver(lab, host.ns, record=record)
    service = host.service
    # (subnet, size, an unknown address in it, an address just outside it)
    cases = [
        ("10.0.0.0/24", 256, "10.0.0.99", "10.0.1.99"),
        ("10.61.0.64/26", 64, "10.61.0.120", "10.61.0.5"),
        ("10.62.16.0/20", 4096, "10.62.30.7", "10.62.32.1"),
    ]
    guests = []
    for number, (subnet, size, unknown, outside) in enumerate(cases):
        project = f"p{number}"
        service.create_project(project)
        (network,) = service.create_networks(subnet, 1, size, 100 + number, 1000 + number)
        vm = service.launch_instance(project, f"guest{number}").addresses[0]
        known = service.launch_instance(project, f"known{number}").addresses[0]
        guests.append((network, vm, (f"known{number}", known.address), unknown, outside))
    host.sync.sync()

    asked_outside = []
    for network, vm, known, unknown, outside in guests:
        guest = host.instance(f"g{network.id}", vm.mac, network.bridge)
        assert lease(lab, guest) is not None
        gateway = network.gateway
        name = f"{known[0]}.novalocal"
        _wait_resolves(guest, gateway, name)
        assert resolve(guest, gateway, reverse_name(known[1]), "PTR") == ("NOERROR", [name])
        assert resolve(guest, gateway, reverse_name(unknown), "PTR") == ("NXDOMAIN", [])
        # The subnet's gateway and broadcast have no instance either.
        assert resolve(guest, gateway, reverse_name(network.broadcast), "PTR")[0] == "NXDOMAIN"
        resolve(guest, gateway, reverse_name(outside), "PTR")
        asked_outside.append(reverse_name(outside))

    # Every address beside a subnet reached the upstream, which shows it records what
    # it is asked; nothing of the subnets themselves did.
    seen = record.read_text()
    for name in asked_outside:
        assert f"query[PTR] {name} from" in seen
    for network, _vm, known, unknown, _outside in guests:
        for address in (known[1], unknown, network.broadcast):
            assert reverse_name(address) not in seen
