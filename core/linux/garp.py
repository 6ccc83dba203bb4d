"""Gratuitous ARP: tell a segment's switches and neighbours that an address now lives here.

Sent when a floating IP or a gateway arrives on a host (an association, a failover), so
upstream switches and routers move their entries at once instead of when they expire;
what ``arping -U`` does, written as one frame on a packet socket.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import threading

ETH_P_ARP = 0x0806
SIOCGIFHWADDR = 0x8927
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
    # Protocol 0 and no bind: such a socket takes in no traffic, and binding one that
    # does waits for a network RCU grace period (some 8 ms); each frame names its way out.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        # The interface's hardware address as this socket's namespace sees it; /sys
        # would show the namespace sysfs was mounted in, not this thread's.
        request = struct.pack("256s", ifname.encode())
        mac = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, request)[18:24]
        for _ in range(repeat):
            for address in addresses:
                sock.sendto(frame(mac, address), (ifname, ETH_P_ARP))
    finally:
        # Closing a packet socket waits for a grace period too (packet_release calls
        # synchronize_net): some 10 ms that the frames, already sent, and the apply
        # that sent them need not wait for.
        threading.Thread(target=sock.close, name="garp-close", daemon=True).start()
