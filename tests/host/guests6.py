"""What a guest does over IPv6, done for real from inside its namespace: waiting for
its SLAAC address, rdisc6, a DHCPv6 client, ICMPv6 echo, DNS over IPv6, a datagram sent
from a chosen source address and a router advert of its own."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.host.conftest import Lab, in_ns


def addresses(ns: str, ifname: str = "eth0", scope: str = "global") -> list[str]:
    """The IPv6 addresses on ``ifname`` of ``scope`` that have passed address detection."""
    out = in_ns(ns, "ip", "-j", "-6", "addr", "show", "dev", ifname, "scope", scope).stdout
    found = []
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            if "local" in info and not info.get("tentative"):
                found.append(f"{info['local']}/{info['prefixlen']}")
    return found


def wait_for(check: object, seconds: float = 15) -> object:
    deadline = time.monotonic() + seconds
    while True:
        value = check()  # type: ignore[operator]
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def default_routes(ns: str, ifname: str = "eth0") -> list[str]:
    out = in_ns(ns, "ip", "-j", "-6", "route", "show", "default", "dev", ifname).stdout
    return [r.get("gateway", "") for r in json.loads(out or "[]")]


def rdisc6(ns: str, ifname: str = "eth0") -> dict[str, str]:
    """What the advert a solicitation brings back carries, as rdisc6 prints it."""
    out = in_ns(ns, "rdisc6", "-1", "-w", "2000", "-r", "3", ifname, timeout=30).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        if line.strip().startswith("from "):
            found.setdefault("from", line.split()[1])
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in found:
            found[key.strip()] = value.strip()
    return found


DHCLIENT_SCRIPT = """#!/bin/sh
case "$reason" in BOUND6|RENEW6|REBIND6|INFORM6)
  [ -n "$new_ip6_address" ] &&
    ip -6 addr add "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad
  printf '{"address":"%s","prefixlen":"%s","dns":"%s","search":"%s"}' "$new_ip6_address" \\
    "$new_ip6_prefixlen" "$new_dhcp6_name_servers" "$new_dhcp6_domain_search" > {out}
;; esac
"""


def dhcpv6(
    lab: Lab,
    ns: str,
    ifname: str = "eth0",
    *,
    stateless: bool = False,
    lease_file: Path | None = None,
) -> dict[str, str] | None:
    """One DHCPv6 exchange with isc-dhcp-client (``stateless``: an information request,
    no address); what its script was given. The client keeps its DUID in ``lease_file``
    (one of the namespace's own by default): a new file is a new DUID, as a rebuilt
    guest's."""
    out = lab.tmp_path / f"dhcp6-{ns}.json"
    out.unlink(missing_ok=True)
    script = lab.tmp_path / f"dhcp6-{ns}.sh"
    script.write_text(DHCLIENT_SCRIPT.replace("{out}", str(out)))
    script.chmod(0o755)
    pid = lab.tmp_path / f"dhcp6-{ns}.pid"
    in_ns(
        ns,
        "timeout",
        "25",
        "dhclient",
        "-6",
        "-1",
        *(["-S"] if stateless else []),
        "-sf",
        str(script),
        "-lf",
        str(lease_file or lab.tmp_path / f"dhcp6-{ns}.leases"),
        "-pf",
        str(pid),
        ifname,
        check=False,
        timeout=30,
    )
    _stop(ns, pid)
    return json.loads(out.read_text()) if out.exists() else None


def duid(lease_file: Path) -> str:
    """The DUID isc-dhcp-client wrote into ``lease_file``."""
    for line in lease_file.read_text().splitlines():
        if line.startswith("default-duid"):
            return line.split(None, 1)[1].rstrip(";")
    raise AssertionError(f"no DUID in {lease_file}")


def _stop(ns: str, pid_file: Path) -> None:
    """The client daemonises once bound: stop it by its own pid."""
    if pid_file.exists():
        text = pid_file.read_text().strip()
        if text.isdigit():
            in_ns(ns, "kill", text, check=False)


PING = r"""
import os, select, socket, struct, sys, time
target, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
ident = os.getpid() & 0xFFFF
payload = bytes(i & 0xFF for i in range(size))
for seq in range(1, 6):
    s.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload, (target, 0, 0, 0))
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        if not select.select([s], [], [], 0.2)[0]:
            continue
        data, peer = s.recvfrom(65536)
        if data[0] == 129 and struct.unpack("!H", data[4:6])[0] == ident and data[8:] == payload:
            print(peer[0]); sys.exit(0)
sys.exit(1)
"""


def ping6(ns: str, target: str, size: int = 56) -> bool:
    """An ICMPv6 echo of ``size`` bytes of payload answered, whole, within five tries."""
    return in_ns(ns, sys.executable, "-c", PING, target, str(size), check=False).returncode == 0


RESOLVE = r"""
import json, random, socket, struct, sys
server, name, qtype = sys.argv[1], sys.argv[2], sys.argv[3]
types = {"A": 1, "PTR": 12, "AAAA": 28}
ident = random.randrange(65536)
query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
query += struct.pack("!HH", types[qtype], 1)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
for attempt in range(4):
    s.sendto(query, (server, 53))
    try:
        reply = s.recv(4096)
    except socket.timeout:
        continue
    if reply[:2] == query[:2]:
        break
else:
    print(json.dumps({"rcode": "TIMEOUT", "answers": []})); sys.exit()

def read_name(data, offset):
    labels = []
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from("!H", data, offset)[0] & 0x3FFF
            labels.append(read_name(data, pointer)[0]); offset += 2; break
        offset += 1
        if length == 0:
            break
        labels.append(data[offset:offset + length].decode()); offset += length
    return ".".join(l for l in labels if l), offset

flags, qd, an = struct.unpack_from("!HHH", reply, 2)
offset = 12
for _ in range(qd):
    offset = read_name(reply, offset)[1] + 4
answers = []
for _ in range(an):
    offset = read_name(reply, offset)[1]
    rtype, _, _, length = struct.unpack_from("!HHIH", reply, offset); offset += 10
    if rtype == 1:
        answers.append(socket.inet_ntoa(reply[offset:offset + 4]))
    elif rtype == 28:
        answers.append(socket.inet_ntop(socket.AF_INET6, reply[offset:offset + 16]))
    elif rtype == 12:
        answers.append(read_name(reply, offset)[0])
    offset += length
rcodes = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
print(json.dumps({"rcode": rcodes.get(flags & 15, str(flags & 15)), "answers": answers}))
"""


def resolve6(ns: str, server: str, name: str, qtype: str = "AAAA") -> tuple[str, list[str]]:
    """Ask ``server`` over IPv6 from inside ``ns``: the answer code and the answers."""
    found = json.loads(in_ns(ns, sys.executable, "-c", RESOLVE, server, name, qtype).stdout)
    return found["rcode"], found["answers"]


def ip6_arpa(address: str) -> str:
    import ipaddress

    return ipaddress.IPv6Address(address).reverse_pointer


LISTEN = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
out = open(sys.argv[3], "a", buffering=1)
while True:
    data, peer = s.recvfrom(2048)
    out.write(f"{peer[0]} {data.decode()}\n")
"""


def listener(lab: Lab, ns: str, address: str, port: int, record: Path) -> None:
    """A UDP server on ``address`` that writes down every datagram and its source."""
    record.touch()
    lab.start(ns, sys.executable, "-c", LISTEN, address, str(port), str(record))


SEND = r"""
import socket, sys, time
source, target, port, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, 78, 1)  # IPV6_FREEBIND: a source not (yet) usable
s.bind((source, int(sys.argv[5])))
for _ in range(5):
    s.sendto(text.encode(), (target, port)); time.sleep(0.1)
"""


def send_from(
    ns: str, source: str, target: str, port: int, text: str, *, source_port: int = 0
) -> None:
    """Five datagrams from ``source`` (and ``source_port``), whatever the guest's own."""
    in_ns(ns, sys.executable, "-c", SEND, source, target, str(port), text, str(source_port))


ROGUE_RA = r"""
import ipaddress, socket, struct, sys
ifname, prefix = sys.argv[1], ipaddress.IPv6Network(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
index = socket.if_nametoindex(ifname)
# Router lifetime 1800 s, and a prefix for autonomous configuration (RFC 4861 4.2, 4.6.2).
advert = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
advert += struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + prefix.network_address.packed
for _ in range(3):
    s.sendto(advert, ("ff02::1", 0, 0, index))
"""


def rogue_advert(ns: str, prefix: str, ifname: str = "eth0") -> None:
    """A router advert from the guest: itself as default router, and ``prefix``."""
    in_ns(ns, sys.executable, "-c", ROGUE_RA, ifname, prefix)
