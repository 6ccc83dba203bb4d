"""What a guest does with its network host, done for real from inside its namespace:
a DHCP client that keeps every option it was given, DNS queries that report the answer
code, and a renewal sent the way a client at T1 sends it (unicast, from its address).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.host.conftest import Lab, in_ns

# busybox udhcpc asks for option 26 only when told to (-O mtu); real images do.
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
  [ -n "$router" ] && ip route replace default via "$router"
  printf '{"ip":"%s","dns":"%s","mtu":"%s","domain":"%s","router":"%s","serverid":"%s"}' \\
    "$ip" "$dns" "$mtu" "$domain" "$router" "$serverid" > {out}
;; esac
"""


def lease(lab: Lab, ns: str, ifname: str = "eth0") -> dict[str, str] | None:
    """One DHCP exchange with busybox udhcpc; the options it was given (its script's
    environment), or None when no server answered."""
    script = lab.tmp_path / f"guest-{ns}.sh"
    out = lab.tmp_path / f"guest-{ns}.json"
    out.unlink(missing_ok=True)
    script.write_text(UDHCPC_SCRIPT.replace("{out}", str(out)))
    script.chmod(0o755)
    in_ns(
        ns,
        "udhcpc",
        "-i",
        ifname,
        "-n",
        "-q",
        "-f",
        "-t",
        "4",
        "-T",
        "1",
        "-O",
        "mtu",
        "-s",
        str(script),
        check=False,
        timeout=30,
    )
    if not out.exists():
        return None
    found: dict[str, str] = json.loads(out.read_text())
    return found


DNS_CLIENT = r"""
import json, random, socket, struct, sys
server, name, qtype = sys.argv[1], sys.argv[2], sys.argv[3]
types = {"A": 1, "PTR": 12, "AAAA": 28}
ident = random.randrange(65536)
query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
query += struct.pack("!HH", types[qtype], 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for attempt in range(3):
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
rcodes = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
offset = 12
for _ in range(qd):
    offset = read_name(reply, offset)[1] + 4
answers = []
for _ in range(an):
    offset = read_name(reply, offset)[1]
    rtype, _, _, length = struct.unpack_from("!HHIH", reply, offset); offset += 10
    if rtype == 1:
        answers.append(socket.inet_ntoa(reply[offset:offset + 4]))
    elif rtype == 12:
        answers.append(read_name(reply, offset)[0])
    offset += length
print(json.dumps({"rcode": rcodes.get(flags & 15, str(flags & 15)), "answers": answers}))
"""


def resolve(ns: str, server: str, name: str, qtype: str = "A") -> tuple[str, list[str]]:
    """Ask ``server`` from inside ``ns``: the answer code and the A/PTR answers."""
    result = in_ns(ns, sys.executable, "-c", DNS_CLIENT, server, name, qtype, timeout=20)
    found = json.loads(result.stdout)
    return found["rcode"], found["answers"]


def reverse_name(address: str) -> str:
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


RENEW_CLIENT = r"""
import json, random, socket, struct, sys, time
ifname, address, server, mac = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
chaddr = bytes.fromhex(mac.replace(":", ""))
xid = random.randrange(1 << 32)
# RENEWING (RFC 2131 4.3.2): ciaddr set, no server identifier, no requested address,
# sent unicast to the server that gave the lease.
message = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, xid, 0, 0,
                      socket.inet_aton(address), bytes(4), bytes(4), bytes(4))
message += chaddr + bytes(10) + bytes(64) + bytes(128) + b"\x63\x82\x53\x63"
message += bytes([53, 1, 3, 55, 3, 1, 3, 26, 255])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((address, 68))
s.settimeout(0.5)
started = time.monotonic()
found = {"type": None, "server": None, "yiaddr": None, "seconds": None}
while time.monotonic() - started < float(sys.argv[5]) and found["type"] is None:
    s.sendto(message, (server, 67))
    try:
        while True:
            reply, peer = s.recvfrom(2048)
            if struct.unpack_from("!I", reply, 4)[0] != xid:
                continue
            offset = 240
            while offset < len(reply) and reply[offset] != 255:
                code = reply[offset]
                if code == 0:
                    offset += 1; continue
                length = reply[offset + 1]; value = reply[offset + 2:offset + 2 + length]
                if code == 53:
                    found["type"] = {5: "ACK", 6: "NAK"}.get(value[0], str(value[0]))
                elif code == 54:
                    found["server"] = socket.inet_ntoa(value)
                offset += 2 + length
            found["yiaddr"] = socket.inet_ntoa(reply[16:20])
            found["seconds"] = round(time.monotonic() - started, 3)
            break
    except socket.timeout:
        pass
print(json.dumps(found))
"""


def renew(
    ns: str, address: str, server: str, mac: str, *, ifname: str = "eth0", within: float = 5
) -> dict[str, object]:
    """A renewal at T1 from ``address``, unicast to ``server``: the reply's message type
    (ACK, NAK or None), the server identifier it carried, yiaddr and how long it took."""
    result = in_ns(
        ns,
        sys.executable,
        "-c",
        RENEW_CLIENT,
        ifname,
        address,
        server,
        mac,
        str(within),
        timeout=within + 20,
    )
    found: dict[str, object] = json.loads(result.stdout)
    return found


def upstream_resolver(
    lab: Lab, host_ns: str, purpose: str = "dns", record: Path | None = None
) -> str:
    """A resolver in its own namespace, reached through the network host, that knows one
    outside name (example.test = 192.0.2.7); returns its address. With ``record``, it
    writes every query it is asked there (``query[PTR] NAME from ADDRESS``)."""
    ns = lab.netns(purpose)
    lab.veth(host_ns, "dns0", ns, "eth0")
    lab.address(host_ns, "dns0", "198.51.100.1/24")
    lab.address(ns, "eth0", "198.51.100.2/24")
    pid_file: Path = lab.tmp_path / f"{ns}.pid"
    lab.start(
        ns,
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=198.51.100.2",
        "--address=/example.test/192.0.2.7",
        f"--pid-file={pid_file}",
        *(["--log-queries", f"--log-facility={record}"] if record is not None else []),
    )
    return "198.51.100.2"
