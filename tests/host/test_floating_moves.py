"""A floating IP that moves takes its traffic with it at once: the public side learns the
address's new home from a gratuitous ARP, and flows set up through the old mapping are
forgotten, so the next packet goes where the database says."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from core.linux.operations import AddNatElement, DeleteNatElement
from tests.host.conftest import Lab, in_ns
from tests.host.probes import open_connection, say
from tests.host.scenario import PUBLIC_CLIENT, network_host

STALE_MAC = "02:00:00:00:00:01"
SOURCE_PORT = 40000
PORT = 5000


def _listener(lab: Lab, ns: str, record: Path) -> None:
    """A UDP listener on PORT in ``ns`` that appends every datagram to ``record``."""
    program = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.bind(('0.0.0.0', {PORT}))\n"
        "while True:\n"
        "    data, _ = s.recvfrom(100)\n"
        f"    with open({str(record)!r}, 'ab') as f:\n"
        "        f.write(data + b'\\n')\n"
    )
    lab.start(ns, sys.executable, "-c", program)


def _send(ns: str, address: str, word: str) -> None:
    """One datagram from the same source address and port every time: one flow."""
    in_ns(
        ns,
        sys.executable,
        "-c",
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(({PUBLIC_CLIENT!r}, {SOURCE_PORT}))\n"
        f"s.sendto({word.encode()!r}, ({address!r}, {PORT}))\n",
    )


def _received(record: Path) -> list[str]:
    return record.read_text().split() if record.exists() else []


def _arrives(address: str, word: str, record: Path) -> bool:
    """Send ``word`` until it shows in ``record`` (the listener may still be starting)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if word in _received(record):
            return True
        time.sleep(0.2)
    return False


def _neighbour_mac(ns: str, address: str) -> str:
    shown = in_ns(ns, "ip", "neigh", "show", address, "dev", "eth0").stdout.split()
    return shown[shown.index("lladdr") + 1] if "lladdr" in shown else ""


def test_a_moved_floating_ip_is_announced_and_its_old_flows_forgotten(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.31.0.0/24", 1, 256)
    first = service.launch_instance("alpha", "vm1").addresses[0]
    second = service.launch_instance("alpha", "vm2").addresses[0]
    service.add_security_group_rule("alpha", "default", "udp", PORT, PORT)
    service.create_floating_range("nethost", "203.0.113.10-203.0.113.12")
    host.sync.sync()
    bridge = service.list_networks()[0].bridge
    guests = {}
    for name, vm in (("vm1", first), ("vm2", second)):
        guests[name] = host.instance(name, vm.mac, bridge)
        assert lab.dhcp_client(guests[name]) == vm.address
    records = {name: tmp_path / f"{name}.udp" for name in guests}
    for name, ns in guests.items():
        _listener(lab, ns, records[name])

    # The public side still believes the address lives at some old MAC (a host that
    # held it before): the association's announcement corrects it at once.
    address = service.allocate_floating_ip("alpha").address
    in_ns(
        host.public,
        "ip",
        "neigh",
        "replace",
        address,
        "lladdr",
        STALE_MAC,
        "dev",
        "eth0",
        "nud",
        "stale",
    )
    service.associate_floating_ip(address, "vm1")
    host.sync.sync()
    public_mac = in_ns(host.ns, "cat", "/sys/class/net/pub0/address").stdout.strip()
    assert _neighbour_mac(host.public, address) == public_mac

    # One flow from the public side reaches vm1 through the floating IP...
    deadline = time.monotonic() + 5
    while "one" not in _received(records["vm1"]) and time.monotonic() < deadline:
        _send(host.public, address, "one")
        time.sleep(0.2)
    assert "one" in _received(records["vm1"])

    # ...and once the address moves to vm2, the same flow's next packet goes to vm2, not
    # to vm1 by the connection tracking the old mapping set up.
    service.disassociate_floating_ip(address)
    service.associate_floating_ip(address, "vm2")
    host.sync.sync()
    assert host.sync.plan().operations == ()
    _send(host.public, address, "two")
    assert _arrives(address, "two", records["vm2"])
    assert "two" not in _received(records["vm1"])


def _tcp_echo(lab: Lab, ns: str, port: int) -> None:
    """A TCP server in ``ns`` that answers each line with the line and its own name."""
    program = (
        "import socket, socketserver\n"
        "class Echo(socketserver.StreamRequestHandler):\n"
        "    def handle(self):\n"
        "        for line in self.rfile:\n"
        "            self.wfile.write(line.strip() + b' from ' + socket.gethostname().encode()"
        " + b'\\n')\n"
        "            self.wfile.flush()\n"
        f"socketserver.ThreadingTCPServer(('0.0.0.0', {port}), Echo).serve_forever()\n"
    )
    lab.start(
        ns,
        "unshare",
        "--uts",
        "sh",
        "-c",
        f"hostname {ns}; exec {sys.executable} -c " + shlex.quote(program),
    )
    lab.wait_listening(ns, port)


def test_an_established_tcp_stream_cannot_outlive_its_floating_ip(lab: Lab, tmp_path: Path) -> None:
    """A live TCP connection through a floating IP: once the address is disassociated,
    the connection's next packet no longer reaches the instance."""
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.32.0.0/24", 1, 256)
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    service.add_security_group_rule("alpha", "default", "tcp", 7000, 7000)
    service.create_floating_range("nethost", "203.0.113.20-203.0.113.22")
    host.sync.sync()
    guest = host.instance("vm1", vm.mac, service.list_networks()[0].bridge)
    assert lab.dhcp_client(guest) == vm.address
    _tcp_echo(lab, guest, 7000)
    address = service.allocate_floating_ip("alpha").address
    service.associate_floating_ip(address, "vm1")
    host.sync.sync()

    # The client keeps one connection open and sends a line when told (a line on its
    # standard input), printing each answer or 'gone' once the connection fails.
    client = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host.public,
            sys.executable,
            "-u",
            "-c",
            "import socket, sys, time\n"
            f"deadline = time.monotonic() + 10\n"
            "while True:\n"
            "    try:\n"
            f"        s = socket.create_connection(({address!r}, 7000), 1); break\n"
            "    except OSError:\n"
            "        if time.monotonic() > deadline: raise\n"
            "        time.sleep(0.2)\n"
            "s.settimeout(3)\n"
            "for line in sys.stdin:\n"
            "    try:\n"
            "        s.sendall(line.encode())\n"
            "        answer = s.recv(100).decode().strip()\n"
            "        print(answer or 'gone', flush=True)\n"
            "    except OSError:\n"
            "        print('gone', flush=True)\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lab.processes.append(client)
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write("one\n")
    client.stdin.flush()
    assert client.stdout.readline().strip() == f"one from {guest}"

    service.disassociate_floating_ip(address)
    host.sync.sync()
    client.stdin.write("two\n")
    client.stdin.flush()
    assert client.stdout.readline().strip() == "gone"


def test_associate_moves_an_address_under_an_open_connection(lab: Lab, tmp_path: Path) -> None:
    """`floating associate` of an associated address moves it in one command: the open
    connection through it is reset (its tracked state went with the old NAT pair, so its
    next segment reaches the new instance, which knows no such connection), and a new
    connection reaches the new instance."""
    from tests.host.test_cli import netcon

    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.33.0.0/24", 1, 256)
    vms = {name: service.launch_instance("alpha", name).addresses[0] for name in ("vm1", "vm2")}
    service.add_security_group_rule("alpha", "default", "tcp", 7000, 7000)
    service.create_floating_range("nethost", "203.0.113.30-203.0.113.32")
    host.sync.sync()
    bridge = service.list_networks()[0].bridge
    guests = {}
    for name, vm in vms.items():
        guests[name] = host.instance(name, vm.mac, bridge)
        assert lab.dhcp_client(guests[name]) == vm.address
        _tcp_echo(lab, guests[name], 7000)
    address = service.allocate_floating_ip("alpha").address
    service.associate_floating_ip(address, "vm1")
    host.sync.sync()

    # One connection from the public side, kept open; each line sent is answered with
    # the line and the server's name, or 'reset' / 'gone' once the connection fails.
    client = open_connection(lab, host.public, address)
    assert say(client, "one") == f"one from {guests['vm1']}"

    # --no-move refuses in one line and writes nothing.
    refused = netcon(lab, "floating", "associate", address, "vm2", "--no-move")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"netcon: address: {address} is associated with vm1 ({vms['vm1'].address}); "
        "not moved to vm2 (--no-move)"
    ]
    assert host.sync.plan().operations == ()

    moved = netcon(lab, "floating", "associate", address, "vm2")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == f"moved {address} from vm1 to vm2 ({vms['vm2'].address})\n"
    applied = host.sync.sync().operations
    assert applied == (
        DeleteNatElement(address, vms["vm1"].address),
        AddNatElement(address, vms["vm2"].address),
    )
    assert host.sync.plan().operations == ()

    assert say(client, "two") == "reset"
    fresh = in_ns(
        host.public,
        sys.executable,
        "-c",
        "import socket\n"
        f"s = socket.create_connection(({address!r}, 7000), 3)\n"
        "s.sendall(b'three\\n')\n"
        "print(s.recv(100).decode().strip())\n",
    )
    assert fresh.stdout.strip() == f"three from {guests['vm2']}"
