"""Gratuitous ARP: tell a segment's switches and neighbours that an address now lives here.

Sent when a floating IP or a gateway arrives on a host (an association, a failover), so
upstream switches and routers move their entries at once instead of when they expire;
what ``arping -U`` does, written as one frame on a packet socket.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

ETH_P_ARP = 0x0806
ARP_REQUEST = 1
BROADCAST = b"\xff" * 6


def frame(mac: bytes, address: str) -> bytes:
    """An ARP request whose sender and target are both ``address``: the form every
    stack takes as an announcement (RFC 5227's ARP Announcement)."""
    ip = ipaddress.IPv4Address(address).packed
    ethernet = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REQUEST) + mac + ip + b"\x00" * 6 + ip
    return ethernet + arp


def announce(ifname: str, addresses: list[str], repeat: int = 2) -> None:
    """Send one announcement per address out of ``ifname`` (in this namespace); twice
    by default, as arping -U -c 2, since a single frame can be lost."""
    if not addresses:
        return
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((ifname, 0))
        # The bound socket names the interface's hardware address; /sys would show the
        # namespace sysfs was mounted in, not this thread's.
        mac = sock.getsockname()[4]
        for _ in range(repeat):
            for address in addresses:
                sock.send(frame(mac, address))
