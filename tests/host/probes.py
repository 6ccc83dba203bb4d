"""Real packets for the security-group tests: servers in guests, probes from anywhere,
and hand-made frames (spoofed addresses) sent and recorded with raw sockets.

Each helper runs one Python process inside a namespace: probes of one source run
together, in threads, so a dozen refused connections cost one timeout, not twelve.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.host.conftest import Lab, in_ns

SERVER = r"""
import selectors, socket, sys
address, tcp, udp = sys.argv[1], sys.argv[2], sys.argv[3]
family = socket.AF_INET6 if ":" in address else socket.AF_INET
selector = selectors.DefaultSelector()
for port in filter(None, tcp.split(",")):
    s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, int(port))); s.listen(64); selector.register(s, selectors.EVENT_READ, "tcp")
for port in filter(None, udp.split(",")):
    s = socket.socket(family, socket.SOCK_DGRAM); s.bind((address, int(port)))
    selector.register(s, selectors.EVENT_READ, "udp")
print("ready", flush=True)
while True:
    for key, _ in selector.select():
        if key.data == "tcp":
            conn, _ = key.fileobj.accept(); conn.sendall(b"ok"); conn.close()
        else:
            data, peer = key.fileobj.recvfrom(2048); key.fileobj.sendto(b"ok", peer)
"""

PROBE = r"""
import json, os, socket, struct, sys, threading, time
probes = json.loads(sys.argv[1]); results = [False] * len(probes)

def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF); total += total >> 16
    return ~total & 0xFFFF

def echo6(i, address, kind):
    # ICMPv6: the kernel fills in the checksum, and a raw socket reads no IP header.
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.settimeout(0.3); ident = (os.getpid() + i) & 0xFFFF
    s.sendto(struct.pack("!BBHHH", kind, 0, 0, ident, 1) + b"probe", (address, 0))
    deadline = time.time() + 1.5
    while time.time() < deadline:
        try:
            data, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        if peer[0] == address and data[0] == 129 and struct.unpack("!H", data[4:6])[0] == ident:
            return True
    return False

def run(i, protocol, address, port):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        if protocol == "tcp":
            s = socket.create_connection((address, port), timeout=1.5)
            s.settimeout(1.5); results[i] = s.recv(2) == b"ok"
        elif protocol == "udp":
            s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(1.5)
            s.sendto(b"hi", (address, port)); results[i] = s.recvfrom(16)[0] == b"ok"
        elif family == socket.AF_INET6:
            results[i] = echo6(i, address, port)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            s.settimeout(0.3); ident = (os.getpid() + i) & 0xFFFF
            header = struct.pack("!BBHHH", port, 0, 0, ident, 1) + b"probe"
            packet = header[:2] + struct.pack("!H", checksum(header)) + header[4:]
            s.sendto(packet, (address, 0)); deadline = time.time() + 1.5
            while time.time() < deadline:
                try:
                    data, peer = s.recvfrom(2048)
                except socket.timeout:
                    continue
                icmp = data[(data[0] & 15) * 4:]
                echo = icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident
                if peer[0] == address and echo:
                    results[i] = True; break
    except OSError:
        results[i] = False

threads = [threading.Thread(target=run, args=(i, *p)) for i, p in enumerate(probes)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(results))
"""

FRAME = r"""
import socket, struct, sys
ifname, src_mac, dst_mac, kind = sys.argv[1:5]
mac = lambda text: bytes.fromhex(text.replace(":", ""))
ip = lambda text: socket.inet_aton(text)

def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF); total += total >> 16
    return ~total & 0xFFFF

if kind == "udp":
    src_ip, dst_ip, port, payload = sys.argv[5], sys.argv[6], int(sys.argv[7]), sys.argv[8].encode()
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    addresses = ip(src_ip) + ip(dst_ip)
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0) + addresses
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    frame = mac(dst_mac) + mac(src_mac) + b"\x08\x00" + header + udp
else:  # an ARP reply: sender_ip is at sender_mac, told to target
    sender_mac, sender_ip, target_ip = sys.argv[5], sys.argv[6], sys.argv[7]
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac(sender_mac), ip(sender_ip),
                      mac(dst_mac), ip(target_ip))
    frame = mac(dst_mac) + mac(src_mac) + b"\x08\x06" + arp
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0)); s.send(frame)
"""

RECORDER = r"""
import socket, struct, sys
out = open(sys.argv[2], "a", buffering=1)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind((sys.argv[1], 0))
while True:
    frame, where = s.recvfrom(4096)
    if where[2] == socket.PACKET_OUTGOING:
        continue
    kind = struct.unpack("!H", frame[12:14])[0]
    src = frame[6:12].hex(":")
    if kind == 0x0806:
        out.write(f"arp {src} {frame[22:28].hex(':')} {socket.inet_ntoa(frame[28:32])}\n")
    elif kind == 0x0800:
        body = frame[14:]; start = (body[0] & 15) * 4
        if body[9] == 17:
            note = body[start + 8:].decode(errors="replace")
            out.write(f"udp {src} {socket.inet_ntoa(body[12:16])} {note}\n")
"""


def serve(lab: Lab, ns: str, address: str, tcp: list[int], udp: list[int]) -> None:
    """TCP and UDP servers on ``address`` in ``ns`` that answer every probe with ``ok``."""
    ports = ",".join(map(str, tcp)), ",".join(map(str, udp))
    lab.start(ns, sys.executable, "-c", SERVER, address, *ports)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            tcp
            and in_ns(
                ns,
                sys.executable,
                "-c",
                f"import socket; socket.create_connection(('{address}', {tcp[0]}), 1)",
                check=False,
            ).returncode
            == 0
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"servers on {address} in {ns} did not start")


def probe(ns: str, probes: list[tuple[str, str, int]]) -> list[bool]:
    """For each (protocol, address, port or ICMP type): did an answer come back? (An
    IPv6 address is probed over IPv6, ICMP as ICMPv6.)"""
    result = in_ns(ns, sys.executable, "-c", PROBE, json.dumps(probes), timeout=30)
    return list(json.loads(result.stdout))


def send_udp(
    ns: str, src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, port: int, note: str
) -> None:
    in_ns(
        ns,
        sys.executable,
        "-c",
        FRAME,
        "eth0",
        src_mac,
        dst_mac,
        "udp",
        src_ip,
        dst_ip,
        str(port),
        note,
    )


def send_arp_reply(
    ns: str, src_mac: str, dst_mac: str, sender_mac: str, sender_ip: str, target_ip: str
) -> None:
    in_ns(
        ns,
        sys.executable,
        "-c",
        FRAME,
        "eth0",
        src_mac,
        dst_mac,
        "arp",
        sender_mac,
        sender_ip,
        target_ip,
    )


class Recorder:
    """Every ARP and UDP frame that reaches ``ifname`` in ``ns``, one line each:
    ``arp ETHER-SOURCE SENDER-MAC SENDER-IP`` or ``udp ETHER-SOURCE IP-SOURCE PAYLOAD``."""

    def __init__(self, lab: Lab, ns: str, ifname: str, path: Path) -> None:
        self.path = path
        path.write_text("")
        lab.start(ns, sys.executable, "-c", RECORDER, ifname, str(path))
        time.sleep(0.5)

    def lines(self, settle: float = 1.0) -> list[str]:
        time.sleep(settle)
        return self.path.read_text().splitlines()


def open_connection(lab: Lab, ns: str, address: str, port: int = 7000) -> subprocess.Popen[str]:
    """A TCP connection from ``ns`` kept open (tried for up to 10 s while the path comes
    up): each line written to it is sent, and the answer printed ('reset' or 'gone' once
    the connection fails). Talk to it with :func:`say`."""
    client = subprocess.Popen(
        [
            "ip", "netns", "exec", ns, sys.executable, "-u", "-c",
            "import socket, sys, time\n"
            "deadline = time.monotonic() + 10\n"
            "while True:\n"
            "    try:\n"
            f"        s = socket.create_connection(({address!r}, {port}), 1); break\n"
            "    except OSError:\n"
            "        if time.monotonic() > deadline: raise\n"
            "        time.sleep(0.2)\n"
            "s.settimeout(3)\n"
            "for line in sys.stdin:\n"
            "    try:\n"
            "        s.sendall(line.encode())\n"
            "        print(s.recv(100).decode().strip() or 'gone', flush=True)\n"
            "    except ConnectionResetError:\n"
            "        print('reset', flush=True)\n"
            "    except OSError:\n"
            "        print('gone', flush=True)\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lab.processes.append(client)
    return client


def say(client: subprocess.Popen[str], text: str) -> str:
    """One line sent on an :func:`open_connection`, and what came back."""
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(text + "\n")
    client.stdin.flush()
    return client.stdout.readline().strip()
