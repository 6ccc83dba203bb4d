"""Who answers a guest: its ARP requests for the gateway and its DHCP discoveries, sent
from inside its namespace with raw sockets, and every reply seen, by Ethernet source.

A gateway that moved between hosts keeps its address, so the replies are told apart by
the MAC of the bridge that sent them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.host.conftest import Lab, in_ns

ANSWERS = r"""
import json, random, socket, struct, sys, time
ifname, mac, address, gateway, seconds = sys.argv[1:6]
own = bytes.fromhex(mac.replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
s.settimeout(0.1)
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, own, socket.inet_aton(address),
                  bytes(6), socket.inet_aton(gateway))
arp_frame = b"\xff" * 6 + own + b"\x08\x06" + arp

def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF); total += total >> 16
    return ~total & 0xFFFF

xid = random.randrange(1 << 32)
dhcp = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4),
                   bytes(4), bytes(4))
dhcp += own + bytes(10) + bytes(192) + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 255])
udp = struct.pack("!HHHH", 68, 67, 8 + len(dhcp), 0) + dhcp
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes(4),
                 b"\xff" * 4)
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
dhcp_frame = b"\xff" * 6 + own + b"\x08\x00" + ip + udp
found = set()
deadline = time.monotonic() + float(seconds)
sent = 0.0
print("ready", flush=True)
while time.monotonic() < deadline:
    if time.monotonic() - sent >= 0.5:
        s.send(arp_frame); s.send(dhcp_frame); sent = time.monotonic()
    try:
        frame, where = s.recvfrom(4096)
    except socket.timeout:
        continue
    if where[2] == socket.PACKET_OUTGOING:
        continue
    source = frame[6:12].hex(":")
    kind = struct.unpack("!H", frame[12:14])[0]
    if kind == 0x0806 and frame[21] == 2 and frame[28:32] == socket.inet_aton(gateway):
        found.add(("arp", source))
    elif kind == 0x0800 and frame[23] == 17:
        body = frame[14:]; start = (body[0] & 15) * 4
        ports = struct.unpack("!HH", body[start:start + 4])
        message = body[start + 8:]
        if ports == (67, 68) and struct.unpack("!I", message[4:8])[0] == xid:
            found.add(("dhcp", source))
print(json.dumps(sorted(found)), flush=True)
"""


def answers(ns: str, mac: str, address: str, gateway: str, seconds: float = 3.0) -> set[str]:
    """Who answered, in ``seconds``, the ARP requests for ``gateway`` and the DHCP
    discoveries a guest (``mac``, ``address``) sends: ``arp MAC`` and ``dhcp MAC`` lines."""
    result = in_ns(ns, *_program(mac, address, gateway, seconds), timeout=seconds + 20)
    return _found(result.stdout)


def _program(mac: str, address: str, gateway: str, seconds: float) -> list[str]:
    return [sys.executable, "-c", ANSWERS, "eth0", mac, address, gateway, str(seconds)]


def _found(output: str) -> set[str]:
    return {f"{kind} {source}" for kind, source in json.loads(output.splitlines()[-1])}


class Listening:
    """``answers`` running in the background: started before something happens (an
    agent resuming), read once it is over."""

    def __init__(self, ns: str, mac: str, address: str, gateway: str, seconds: float) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, *_program(mac, address, gateway, seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def result(self) -> set[str]:
        out, _ = self.process.communicate(timeout=60)
        return _found(out)


class AddressWatch:
    """Every address added in a namespace while it runs (``ip monitor address``): proof
    that something never came back, not even for a moment."""

    def __init__(self, lab: Lab, ns: str, path: Path) -> None:
        self.path = path
        self.file = path.open("w")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "ip", "-o", "-4", "monitor", "address"],
            stdout=self.file,
            stderr=subprocess.DEVNULL,
        )
        lab.processes.append(self.process)

    def added(self) -> list[str]:
        self.process.terminate()
        self.process.wait(10)
        self.file.close()
        lines = self.path.read_text().splitlines()
        return [line for line in lines if not line.startswith("Deleted")]
