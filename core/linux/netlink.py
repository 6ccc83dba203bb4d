"""Links and addresses over one long-lived pyroute2 netlink socket per namespace.

Changes are pipelined: each request is a pyroute2 message, many are written to the
socket before any acknowledgement is read, and the acknowledgements are matched back
by sequence number. One request and one wait per operation costs a round trip each,
which is what made the one-process-per-operation way of nova-network slow.

Dumps are parsed straight from the wire for the few fields the planner needs: the
full pyroute2 decoder costs about a third of a millisecond per link, which alone would
dominate an apply that has nothing to change. For the same reason the socket is opened
here (entering the namespace with setns) rather than by pyroute2: importing pyroute2
costs a command 160 ms, more than everything else a no-change apply does. pyroute2's
in-memory kernel is still used when it is switched on (tests of 802.1Q, which this
kernel lacks).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import itertools
import os
import select
import socket
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import HostError
from core.linux.namespace import entered

# Links carry this alias once netcon has created them; nothing else is ever deleted.
OWNER_ALIAS = "netcon"
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
NLM_F_REQUEST, NLM_F_ACK, NLM_F_ROOT, NLM_F_MATCH = 0x1, 0x4, 0x100, 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFF_UP = 1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_EXT_MASK = 18, 20, 29
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 4, 5
IFLA_BRPORT_MODE = 4  # hairpin: the bridge may send a frame back out the port it came in on
IFLA_VXLAN_ID, IFLA_VXLAN_GROUP, IFLA_VXLAN_LINK, IFLA_VXLAN_PORT = 1, 2, 3, 15
IFLA_VLAN_ID = 1
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO = 1, 2, 3, 4, 6
# An address's lifetime that never ends (the kernel's INFINITY_LIFE_TIME).
FOREVER = 0xFFFFFFFF
RTEXT_FILTER_SKIP_STATS = 1 << 3
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
# An IPv6 address used at once, without duplicate address detection: the bridge's
# gateway is ours by the database, and dnsmasq cannot bind a tentative address.
IFA_F_NODAD = 0x02
RT_SCOPE_UNIVERSE = 0
SO_RCVBUFFORCE = 33
RECEIVE_BUFFER = 32 << 20
# Requests written before the first acknowledgement is read; bounded so that the
# acknowledgements never overflow the socket's receive buffer.
WINDOW = 128
SEND_BATCH = 64
TIMEOUT = 30.0

_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None
    master: int
    up: bool
    alias: str | None
    # VXLAN VNI or 802.1Q id, and the lower device (VLAN parent or VXLAN underlay).
    segment_id: int | None
    parent: int
    mtu: int = 0
    # A bridge port in hairpin mode.
    hairpin: bool = False


@dataclass(frozen=True)
class Address:
    index: int
    address: str
    prefixlen: int
    label: str | None
    # False when the address has a lifetime and the kernel deletes it when that ends.
    permanent: bool = True


@dataclass(frozen=True)
class Request:
    """One rtnetlink request: its type, flags and body; the header is added on sending.

    Built with struct rather than pyroute2's message classes: those cost a quarter of
    a millisecond per message, more than the kernel takes to create a bridge.
    """

    msg_type: int
    flags: int
    body: bytes

    def encode(self, seq: int) -> bytes:
        return _HEADER.pack(_HEADER.size + len(self.body), self.msg_type, self.flags, seq, 0) + (
            self.body
        )


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _attr_text(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _attr_u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
_CHANGE = NLM_F_REQUEST | NLM_F_ACK
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")


def vxlan_data(vni: int, group: str, underlay: int, port: int) -> bytes:
    return (
        _attr_u32(IFLA_VXLAN_ID, vni)
        + _attr(IFLA_VXLAN_GROUP, socket.inet_aton(group))
        + _attr_u32(IFLA_VXLAN_LINK, underlay)
        + _attr(IFLA_VXLAN_PORT, struct.pack("!H", port))
    )


def vlan_data(vlan_id: int) -> bytes:
    return _attr(IFLA_VLAN_ID, struct.pack("=H", vlan_id))


def new_link(
    name: str,
    kind: str,
    *,
    up: bool = True,
    link: int | None = None,
    data: bytes = b"",
    address: bytes | None = None,
) -> Request:
    info = _attr_text(IFLA_INFO_KIND, kind)
    if data:
        info += _attr(IFLA_INFO_DATA, data)
    attrs = _attr_text(IFLA_IFNAME, name)
    if address is not None:
        attrs += _attr(IFLA_ADDRESS, address)
    if link is not None:
        attrs += _attr_u32(IFLA_LINK, link)
    attrs += _attr(IFLA_LINKINFO, info)
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP if up else 0, IFF_UP) + attrs
    return Request(RTM_NEWLINK, _CREATE, body)


def bridge_address() -> bytes:
    """A MAC address for a new bridge: random, locally administered and unicast, as the
    kernel would pick, but given, so that it is the bridge's for good. A bridge with no
    address of its own takes the lowest of its ports' and changes it when a port with a
    lower one arrives: a guest that learnt the old one as its router's then sends there,
    and a port's address is not the host's, so its traffic is dropped."""
    chosen = bytearray(os.urandom(6))
    chosen[0] = (chosen[0] & 0xFE) | 0x02
    return bytes(chosen)


def set_link(
    index: int,
    *,
    master: int | None = None,
    alias: str | None = None,
    up: bool | None = None,
    mtu: int | None = None,
) -> Request:
    attrs = b""
    if mtu is not None:
        attrs += _attr_u32(IFLA_MTU, mtu)
    if master is not None:
        attrs += _attr_u32(IFLA_MASTER, master)
    if alias is not None:
        attrs += _attr_text(IFLA_IFALIAS, alias)
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return Request(RTM_SETLINK, _CHANGE, _IFINFO.pack(0, 0, index, flags, change) + attrs)


def set_port(index: int, *, hairpin: bool) -> Request:
    """A bridge port's hairpin mode (RTM_NEWLINK on the existing link: RTM_SETLINK leaves
    a port's bridge settings alone)."""
    port = _attr(IFLA_BRPORT_MODE, bytes([int(hairpin)]))
    info = _attr_text(IFLA_INFO_SLAVE_KIND, "bridge") + _attr(IFLA_INFO_SLAVE_DATA, port)
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + _attr(IFLA_LINKINFO, info)
    return Request(RTM_NEWLINK, _CHANGE, body)


def del_link(index: int) -> Request:
    return Request(RTM_DELLINK, _CHANGE, _IFINFO.pack(0, 0, index, 0, 0))


def _addr_body(index: int, address: str, prefixlen: int) -> bytes:
    if ":" in address:
        packed = socket.inet_pton(socket.AF_INET6, address)
        return _IFADDR.pack(socket.AF_INET6, prefixlen, IFA_F_NODAD, 0, index) + _attr(
            IFA_ADDRESS, packed
        )
    packed = socket.inet_aton(address)
    return (
        _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index)
        + _attr(IFA_LOCAL, packed)
        + _attr(IFA_ADDRESS, packed)
    )


def new_addr(
    index: int,
    address: str,
    prefixlen: int,
    *,
    broadcast: str | None = None,
    label: str | None = None,
    lifetime: int | None = None,
) -> Request:
    """Add an address; with ``lifetime`` (seconds, valid and preferred alike) the kernel
    deletes it when that ends."""
    body = _addr_body(index, address, prefixlen)
    if broadcast is not None:
        body += _attr(IFA_BROADCAST, socket.inet_aton(broadcast))
    if label is not None:
        body += _attr_text(IFA_LABEL, label)
    if lifetime is not None:
        body += _lifetime(lifetime)
    return Request(RTM_NEWADDR, _CREATE, body)


def set_addr_lifetime(index: int, address: str, prefixlen: int, lifetime: int | None) -> Request:
    """Give an address a new lifetime (None: forever), counted from now.

    The kernel has no "change only": an address that is not there is made, so this is
    sent only for addresses that are wanted where they are."""
    body = _addr_body(index, address, prefixlen) + _lifetime(lifetime)
    return Request(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE, body)


def _lifetime(seconds: int | None) -> bytes:
    value = FOREVER if seconds is None else seconds
    # struct ifa_cacheinfo: preferred, valid (the kernel fills in the time stamps).
    return _attr(IFA_CACHEINFO, struct.pack("=IIII", value, value, 0, 0))


def del_addr(index: int, address: str, prefixlen: int) -> Request:
    return Request(RTM_DELADDR, _CHANGE, _addr_body(index, address, prefixlen))


def kernel_has_8021q() -> bool:
    """Whether links of kind vlan can be made here (pyroute2's in-memory kernel has
    them; this kernel may have been built without)."""
    from core.linux.sysfs import has_8021q

    return _mock_kernel() or has_8021q()


def _mock_kernel() -> bool:
    """Whether pyroute2's in-memory kernel is switched on (only tests do that)."""
    config = sys.modules.get("pyroute2.config")
    return bool(getattr(config, "mock_netlink", False))


def _open_socket(netns: str | None) -> socket.socket:
    try:
        with entered(netns):
            return socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
    except OSError as exc:
        where = f"namespace {netns}" if netns else "this host"
        raise HostError(f"cannot open netlink in {where}: {exc.strerror or exc}") from None


class Netlink:
    """One namespace's rtnetlink socket, opened once and kept for the process's life."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: Any = None
        self._sock: Any
        if _mock_kernel():
            from pyroute2 import IPRoute

            with entered(netns):
                self._ipr = IPRoute(groups=0)
            self._sock = self._ipr.asyncore.socket
        else:
            self._sock = _open_socket(netns)
        self._seq = itertools.count(0x40000000)
        # Subscribed to link and address notifications, which keep the last dump up to
        # date: a no-change apply reads nothing from the kernel, and one change costs
        # the same with 5,000 addresses as with 10.
        self._links: dict[int, Link] | None = None
        self._addrs: dict[tuple[int, str, int], Address] | None = None
        self._raced = False
        self._pending: list[tuple[int, bytes]] = []
        # pyroute2's in-memory mock has no socket options: there, always dump.
        self._watching = self._ipr is None
        self._port = 0
        if self._watching:
            self._sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
            self._port = self._sock.getsockname()[0]
            with contextlib.suppress(OSError):
                # Room for the notifications of a whole pipelined window (root may force).
                self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
            with contextlib.suppress(OSError):
                # Dumps filtered by the kernel (the addresses of one interface).
                self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
        else:
            self._sock.close()

    # -- reading ------------------------------------------------------------------

    def state(self, *, fresh: bool = False) -> tuple[list[Link], list[Address]]:
        """Links and addresses (IPv4, and IPv6 of global scope), from the
        notification-kept copy when there is one (``fresh``: from new dumps, which also
        renew the copy).

        The kernel does not announce every change: an alias set on a link that is down
        goes unnoticed, so the full comparison (``host apply``) asks afresh.
        """
        self._drain()
        if fresh:
            self._forget()
        self._flush()
        if self._links is not None and self._addrs is not None:
            return list(self._links.values()), list(self._addrs.values())
        self._raced = False
        links = self.links()
        addresses = self.addresses()
        # A notification seen during the dumps may or may not be in them: do not keep.
        if self._watching and not self._raced:
            self._links = {link.index: link for link in links}
            self._addrs = {(a.index, a.address, a.prefixlen): a for a in addresses}
        return links, addresses

    def catch_up(self) -> None:
        """Bring the kept copy up to date now (after an apply, not in the next one)."""
        self._drain()
        self._flush()

    def indexes(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Interface index by name, of every link or of ``names`` (from the kept copy
        when there is one)."""
        self._drain()
        self._flush()
        if self._links is not None:
            return {link.name: link.index for link in self._links.values()}
        if names is not None:
            return {link.name: link.index for link in self.links_named(names)}
        return {link.name: link.index for link in self.state()[0]}

    def _drain(self) -> None:
        while select.select([self._sock], [], [], 0)[0]:
            # Nothing of ours is outstanding: whatever is here is a notification.
            for msg_type, _seq, msg in self._receive():
                self._note(msg_type, msg)

    def _forget(self) -> None:
        self._links = None
        self._addrs = None
        self._pending = []

    def _note(self, msg_type: int, msg: bytes) -> None:
        """Keep one notification for the copy; parsed only when the copy is next read."""
        self._raced = True
        if self._links is not None:
            self._pending.append((msg_type, msg))

    def _flush(self) -> None:
        """Apply the kept notifications; of many about one link only the last is parsed."""
        pending, self._pending = self._pending, []
        links, addrs = self._links, self._addrs
        if links is None or addrs is None:
            return
        last_link: dict[int, tuple[int, bytes]] = {}
        for msg_type, msg in pending:
            if msg_type in (RTM_NEWLINK, RTM_DELLINK):
                # Bridge-port messages (family AF_BRIDGE) describe a port, not the link.
                if msg[16] == socket.AF_UNSPEC:
                    last_link[struct.unpack_from("=i", msg, 20)[0]] = (msg_type, msg)
            elif msg_type in (RTM_NEWADDR, RTM_DELADDR):
                address = _parse_address(msg)
                if address is None:
                    continue
                key = (address.index, address.address, address.prefixlen)
                if msg_type == RTM_NEWADDR:
                    addrs[key] = address
                else:
                    addrs.pop(key, None)
        for index, (msg_type, msg) in last_link.items():
            if msg_type == RTM_NEWLINK:
                links[index] = _parse_link(msg)
            else:
                links.pop(index, None)
                for key in [k for k in addrs if k[0] == index]:
                    del addrs[key]

    def links(self) -> list[Link]:
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
        body += _ATTR.pack(8, IFLA_EXT_MASK) + struct.pack("=I", RTEXT_FILTER_SKIP_STATS)
        return [_parse_link(m) for m in self._dump(RTM_GETLINK, body)]

    def addresses(self) -> list[Address]:
        body = struct.pack("=BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0)
        found = (_parse_address(m) for m in self._dump(RTM_GETADDR, body))
        return [a for a in found if a is not None]

    # -- reading a few ---------------------------------------------------------------
    # A scoped apply asks for the links it names and the addresses it cares about, so
    # that it costs the same beside 5,000 addresses as beside 10. With a kept copy
    # (a long-lived process) the answer comes from the copy instead.

    def links_named(self, names: Iterable[str], indexes: Iterable[int] = ()) -> list[Link]:
        """The links of these names and indexes that exist."""
        names, indexes = set(names), set(indexes)
        if not names and not indexes:
            return []
        self._drain()
        self._flush()
        if self._links is not None or not self._watching:
            every = self._links.values() if self._links is not None else self.links()
            return [k for k in every if k.name in names or k.index in indexes]
        skip = _ATTR.pack(8, IFLA_EXT_MASK) + struct.pack("=I", RTEXT_FILTER_SKIP_STATS)
        requests = [
            Request(RTM_GETLINK, NLM_F_REQUEST, _IFINFO.pack(0, 0, 0, 0, 0) + skip + name_attr)
            for name_attr in (_attr_text(IFLA_IFNAME, name) for name in sorted(names))
        ]
        requests += [
            Request(RTM_GETLINK, NLM_F_REQUEST, _IFINFO.pack(0, 0, index, 0, 0) + skip)
            for index in sorted(indexes)
        ]
        found = {}
        for reply in self._ask(requests):
            if isinstance(reply, bytes):
                link = _parse_link(reply)
                found[link.index] = link
        return list(found.values())

    def addresses_matching(self, indexes: Iterable[int], addresses: Iterable[str]) -> list[Address]:
        """The addresses on these interfaces, and these addresses wherever they are."""
        indexes, wanted = set(indexes), set(addresses)
        if not indexes and not wanted:
            return []  # a change to security groups alone: no dump of every address
        self._drain()
        self._flush()
        if self._addrs is not None:
            every: Iterable[Address] = self._addrs.values()
        else:
            body = struct.pack("=BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0)
            packed = [_packed(a) for a in wanted]
            raw = self._dump(RTM_GETADDR, body)
            if len(packed) <= 16:
                # Only messages that can match are decoded: a public interface may
                # carry thousands of floating addresses.
                raw = [
                    m
                    for m in raw
                    if _u32(m[20:24]) in indexes or any(value in m for value in packed)
                ]
            every = [a for a in map(_parse_address, raw) if a is not None]
        return [a for a in every if a.index in indexes or a.address in wanted]

    def _ask(self, requests: Sequence[Request]) -> list[bytes | int]:
        """Send requests that each get one answer (a get): the message, or an errno."""
        answers: list[bytes | int] = [0] * len(requests)
        by_seq: dict[int, int] = {}
        position = 0
        while position < len(requests) or by_seq:
            if position < len(requests) and len(by_seq) < WINDOW:
                stop = min(len(requests), position + SEND_BATCH, position + WINDOW - len(by_seq))
                chunk = bytearray()
                for index in range(position, stop):
                    seq = self._next_seq()
                    chunk += requests[index].encode(seq)
                    by_seq[seq] = index
                position = stop
                self._send(bytes(chunk))
                continue
            for msg_type, msg_seq, msg in self._receive():
                pid = struct.unpack_from("=I", msg, 12)[0]
                if msg_seq not in by_seq or pid != self._port:
                    self._note(msg_type, msg)
                    continue
                index = by_seq.pop(msg_seq)
                if msg_type == NLMSG_ERROR:
                    answers[index] = -struct.unpack_from("=i", msg, 16)[0]
                else:
                    answers[index] = msg
        return answers

    def _dump(self, msg_type: int, body: bytes) -> list[bytes]:
        seq = self._next_seq()
        flags = NLM_F_REQUEST | NLM_F_DUMP
        self._send(_HEADER.pack(_HEADER.size + len(body), msg_type, flags, seq, 0) + body)
        found: list[bytes] = []
        while True:
            for msg_type_in, msg_seq, msg in self._receive():
                if msg_seq != seq:
                    # A notification (it carries the seq of whoever made the change).
                    self._note(msg_type_in, msg)
                    continue
                if msg_type_in == NLMSG_DONE:
                    return found
                if msg_type_in == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", msg, 16)[0]
                    raise HostError(f"netlink dump failed: {os.strerror(code)}")
                found.append(msg)

    # -- changing -------------------------------------------------------------------

    def run(self, requests: Sequence[Request]) -> list[int]:
        """Send every request, pipelined; the errno of each (0: done), in order."""
        if not requests:
            return []
        self._drain()
        return self._run(requests)

    def _run(self, requests: Sequence[Request]) -> list[int]:
        results: list[int | None] = [None] * len(requests)
        by_seq: dict[int, int] = {}
        position = 0
        while position < len(requests) or by_seq:
            if position < len(requests) and len(by_seq) < WINDOW:
                chunk = bytearray()
                stop = min(len(requests), position + SEND_BATCH, position + WINDOW - len(by_seq))
                for index in range(position, stop):
                    seq = self._next_seq()
                    chunk += requests[index].encode(seq)
                    by_seq[seq] = index
                position = stop
                self._send(bytes(chunk))
                continue
            for msg_type, msg_seq, msg in self._receive():
                # Notifications of our own changes carry our sequence numbers too (the
                # mock sends none, and its replies carry no type).
                reply = msg_type in (NLMSG_ERROR, NLMSG_DONE) or not self._watching
                if not reply or msg_seq not in by_seq:
                    self._note(msg_type, msg)
                    continue
                index = by_seq.pop(msg_seq)
                if len(msg) >= 20 and msg_type != NLMSG_DONE:
                    results[index] = -struct.unpack_from("=i", msg, 16)[0]
                else:
                    # The in-memory mock of pyroute2 answers some requests with DONE.
                    results[index] = 0
        return [r or 0 for r in results]

    def _next_seq(self) -> int:
        seq = next(self._seq)
        if seq >= 0x7FFFFFFF:
            self._seq = itertools.count(0x40000000)
        return seq

    def _send(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except OSError as exc:
            raise HostError(f"netlink send failed: {exc.strerror or exc}") from None

    def _receive(self) -> list[tuple[int, int, bytes]]:
        """Every message waiting on the socket (waiting for the first one)."""
        ready, _, _ = select.select([self._sock], [], [], TIMEOUT)
        if not ready:
            raise HostError(f"the kernel did not answer netlink requests within {TIMEOUT:.0f} s")
        out: list[tuple[int, int, bytes]] = []
        # The kernel answers a whole batch while we send it: read everything queued.
        while True:
            try:
                data = self._sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    # Notifications overflowed the buffer: what was missed is unknown.
                    self._forget()
                    continue
                raise HostError(f"netlink receive failed: {exc.strerror or exc}") from None
            out += split_messages(data)
            if not self._watching:
                return out  # the mock's socket pair: one answer per read


def split_messages(data: bytes) -> list[tuple[int, int, bytes]]:
    """The netlink messages of one datagram, as (type, sequence number, message)."""
    out = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, msg_type, _flags, seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        out.append((msg_type, seq, data[offset : offset + length]))
        offset += (length + 3) & ~3
    return out


_LINK_ATTRS = frozenset(
    (IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS)
)


_BRPORT_ATTRS = frozenset((IFLA_BRPORT_MODE,))


def _attrs(msg: bytes, offset: int, wanted: frozenset[int] | None = None) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    end = len(msg)
    unpack = _ATTR.unpack_from
    while offset + 4 <= end:
        length, kind = unpack(msg, offset)
        if length < 4:
            break
        kind &= 0x3FFF
        if wanted is None or kind in wanted:
            found[kind] = msg[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.split(b"\0", 1)[0].decode(errors="replace")


def _u32(value: bytes | None) -> int:
    return struct.unpack_from("=I", value)[0] if value and len(value) >= 4 else 0


def _parse_link(msg: bytes) -> Link:
    _family, _type, index, flags, _change = struct.unpack_from("=BxHiII", msg, 16)
    attrs = _attrs(msg, 32, _LINK_ATTRS)
    kind = None
    segment_id = None
    parent = _u32(attrs.get(IFLA_LINK))
    info = attrs.get(IFLA_LINKINFO)
    hairpin = False
    if info is not None:
        nested = _attrs(info, 0)
        kind = _text(nested.get(IFLA_INFO_KIND))
        port = nested.get(IFLA_INFO_SLAVE_DATA)
        if port is not None:
            mode = _attrs(port, 0, _BRPORT_ATTRS).get(IFLA_BRPORT_MODE)
            hairpin = bool(mode and mode[0])
        data = nested.get(IFLA_INFO_DATA)
        if data is not None and kind in ("vxlan", "vlan"):
            fields = _attrs(data, 0)
            if kind == "vxlan":
                segment_id = _u32(fields.get(IFLA_VXLAN_ID))
                parent = _u32(fields.get(IFLA_VXLAN_LINK))
            else:
                raw = fields.get(IFLA_VLAN_ID)
                segment_id = struct.unpack_from("=H", raw)[0] if raw else None
    return Link(
        index=index,
        name=_text(attrs.get(IFLA_IFNAME)) or "",
        kind=kind,
        master=_u32(attrs.get(IFLA_MASTER)),
        up=bool(flags & IFF_UP),
        alias=_text(attrs.get(IFLA_IFALIAS)) or None,
        segment_id=segment_id,
        parent=parent,
        mtu=_u32(attrs.get(IFLA_MTU)),
        hairpin=hairpin,
    )


def _packed(address: str) -> bytes:
    if ":" in address:
        return socket.inet_pton(socket.AF_INET6, address)
    return socket.inet_aton(address)


def _parse_address(msg: bytes) -> Address | None:
    """An IPv4 address, or an IPv6 one of global scope: the kernel's own link-local
    addresses (and any other of link or host scope) are never netcon's."""
    family, prefixlen, _flags, scope, index = struct.unpack_from("=BBBBI", msg, 16)
    if family == socket.AF_INET6:
        if scope != RT_SCOPE_UNIVERSE:
            return None
        attrs = _attrs(msg, 24)
        raw = attrs.get(IFA_ADDRESS) or attrs.get(IFA_LOCAL)
        if raw is None or len(raw) != 16:
            return None
        # Written as Python writes it (RFC 5952), as the database holds it.
        text = str(ipaddress.IPv6Address(raw))
    elif family == socket.AF_INET:
        attrs = _attrs(msg, 24)
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if raw is None or len(raw) != 4:
            return None
        text = socket.inet_ntoa(raw)
    else:
        return None
    # The valid lifetime left (struct ifa_cacheinfo's second field); an address the
    # kernel reports without one (pyroute2's mock) has none.
    cache = attrs.get(IFA_CACHEINFO)
    valid = struct.unpack_from("=I", cache, 4)[0] if cache and len(cache) >= 8 else FOREVER
    return Address(
        index=index,
        address=text,
        prefixlen=prefixlen,
        label=_text(attrs.get(IFA_LABEL)),
        permanent=valid == FOREVER,
    )
