"""A floating IP that moves takes its traffic with it at once: the public side learns the
address's new home from a gratuitous ARP, and flows set up through the old mapping are
forgotten, so the next packet goes where the database says."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.host.conftest import Lab, in_ns
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
    host.layer.sync()
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
    host.layer.sync()
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
    host.layer.sync()
    assert host.layer.plan().operations == ()
    _send(host.public, address, "two")
    assert _arrives(address, "two", records["vm2"])
    assert "two" not in _received(records["vm1"])
