"""A few elements of netcon's nftables sets and maps, looked up by key over nfnetlink.

The nft program answers any question about a table by first fetching all of it: with
5,000 floating IPs that is 20 ms, growing with the table, even to learn one element.
The kernel answers a lookup by key directly (NFT_MSG_GETSETELEM without a dump), so an
apply scoped to one floating IP asks for its own elements and nothing else, at the
same cost on any host. Changes still go through the nft program (core.linux.nft).
"""

from __future__ import annotations

import ipaddress
import itertools
import select
import socket
import struct
from collections.abc import Iterable, Sequence

from core.errors import HostError
from core.linux import nft
from core.linux.namespace import entered
from core.linux.netlink import split_messages

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETSET, NFT_MSG_GETSETELEM = 10, 13
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
NFTA_SET_TABLE, NFTA_SET_NAME = 1, 2
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_FLAGS = 1, 2, 3
NFTA_DATA_VALUE = 1
NFT_SET_ELEM_INTERVAL_END = 1
IFNAMSIZ = 16
TIMEOUT = 10.0
WINDOW = 64

_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _nested(kind: int, payload: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, payload)


def _attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    found = {}
    while offset + 4 <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def ipv4_key(address: str) -> bytes:
    return socket.inet_aton(address)


def ifname_key(name: str) -> bytes:
    return name.encode().ljust(IFNAMSIZ, b"\0")


def ifname_text(key: bytes) -> str:
    return key.split(b"\0", 1)[0].decode(errors="replace")


class Element:
    """What the kernel holds under a key: the element's own key (for an interval set, the
    start of the interval the key falls in), its data (maps) and whether it ends one."""

    __slots__ = ("data", "interval_end", "key")

    def __init__(self, key: bytes, data: bytes | None, interval_end: bool) -> None:
        self.key = key
        self.data = data
        self.interval_end = interval_end


class Lookup:
    """One namespace's nfnetlink socket for lookups; kept open like the netlink one."""

    def __init__(self, netns: str | None, family: int = socket.AF_INET) -> None:
        self.family = family
        try:
            with entered(netns):
                self._sock = socket.socket(
                    socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER
                )
            self._sock.bind((0, 0))
        except OSError as exc:
            raise HostError(f"cannot open nfnetlink: {exc.strerror or exc}") from None
        self._port = self._sock.getsockname()[0]
        self._seq = itertools.count(1)

    def close(self) -> None:
        self._sock.close()

    def sets_exist(self, table: str, names: Iterable[str]) -> bool:
        """Whether the table has all these sets and maps."""
        requests = [
            (
                NFT_MSG_GETSET,
                _attr(NFTA_SET_TABLE, table.encode() + b"\0")
                + _attr(NFTA_SET_NAME, name.encode() + b"\0"),
            )
            for name in names
        ]
        return all(isinstance(answer, bytes) for answer in self._ask(requests))

    def get(self, table: str, set_name: str, keys: Sequence[bytes]) -> list[Element | None]:
        """The element under each key (None: there is none)."""
        head = _attr(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0") + _attr(
            NFTA_SET_ELEM_LIST_SET, set_name.encode() + b"\0"
        )
        requests = [
            (
                NFT_MSG_GETSETELEM,
                head
                + _nested(
                    NFTA_SET_ELEM_LIST_ELEMENTS,
                    _nested(
                        NFTA_LIST_ELEM,
                        _nested(NFTA_SET_ELEM_KEY, _attr(NFTA_DATA_VALUE, key)),
                    ),
                ),
            )
            for key in keys
        ]
        return [
            _element(answer) if isinstance(answer, bytes) else None
            for answer in self._ask(requests)
        ]

    def _ask(self, requests: Sequence[tuple[int, bytes]]) -> list[bytes | int]:
        answers: list[bytes | int] = [0] * len(requests)
        by_seq: dict[int, int] = {}
        position = 0
        nfgen = struct.pack("=BBH", self.family, 0, 0)
        while position < len(requests) or by_seq:
            if position < len(requests) and len(by_seq) < WINDOW:
                chunk = bytearray()
                stop = min(len(requests), position + WINDOW - len(by_seq))
                for index in range(position, stop):
                    kind, body = requests[index]
                    seq = next(self._seq)
                    by_seq[seq] = index
                    payload = nfgen + body
                    chunk += _HEADER.pack(
                        _HEADER.size + len(payload),
                        (NFNL_SUBSYS_NFTABLES << 8) | kind,
                        NLM_F_REQUEST,
                        seq,
                        0,
                    )
                    chunk += payload
                position = stop
                self._send(bytes(chunk))
                continue
            for msg_type, seq, msg in self._receive():
                if seq not in by_seq:
                    continue
                index = by_seq.pop(seq)
                if msg_type == NLMSG_ERROR:
                    answers[index] = -struct.unpack_from("=i", msg, 16)[0]
                else:
                    answers[index] = msg
        return answers

    def _send(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except OSError as exc:
            raise HostError(f"nfnetlink send failed: {exc.strerror or exc}") from None

    def _receive(self) -> list[tuple[int, int, bytes]]:
        ready, _, _ = select.select([self._sock], [], [], TIMEOUT)
        if not ready:
            raise HostError(f"the kernel did not answer nftables lookups within {TIMEOUT:.0f} s")
        out: list[tuple[int, int, bytes]] = []
        while True:
            try:
                data = self._sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as exc:
                raise HostError(f"nfnetlink receive failed: {exc.strerror or exc}") from None
            out += split_messages(data)


def _element(msg: bytes) -> Element | None:
    # nlmsghdr (16) + nfgenmsg (4), then the element list.
    top = _attrs(msg, 20)
    listing = top.get(NFTA_SET_ELEM_LIST_ELEMENTS)
    if listing is None:
        return None
    item = _attrs(listing).get(NFTA_LIST_ELEM)
    if item is None:
        return None
    fields = _attrs(item)
    key = _attrs(fields.get(NFTA_SET_ELEM_KEY, b"")).get(NFTA_DATA_VALUE)
    if key is None:
        return None
    data = None
    if NFTA_SET_ELEM_DATA in fields:
        data = _attrs(fields[NFTA_SET_ELEM_DATA]).get(NFTA_DATA_VALUE)
    flags_raw = fields.get(NFTA_SET_ELEM_FLAGS)
    flags = struct.unpack("!I", flags_raw[:4])[0] if flags_raw and len(flags_raw) >= 4 else 0
    return Element(key, data, bool(flags & NFT_SET_ELEM_INTERVAL_END))


def scoped_state(
    lookup: Lookup,
    *,
    interfaces: Iterable[str],
    bridges: Iterable[str],
    cidrs: Iterable[str],
    floating: Iterable[str],
    fixed: Iterable[str],
) -> nft.NftState | None:
    """netcon's table as far as these keys go, in the shape nft.Nft.observe() gives for
    all of it; None when the table or one of its sets is missing (a full apply makes it).

    The NAT maps are followed from key to value and back (a floating IP's old target,
    that target's other floating IP), so a pair is always seen whole.
    """
    table = nft.TABLE
    if not lookup.sets_exist(
        table, (*nft.IFNAME_SETS, nft.PAIR_SET, nft.NET_SET, nft.DNAT_MAP, nft.SNAT_MAP)
    ):
        return None
    sets: dict[str, frozenset[str]] = {}
    names = sorted(set(interfaces))
    found = lookup.get(table, "public_ifs", [ifname_key(n) for n in names])
    sets["public_ifs"] = frozenset(n for n, e in zip(names, found, strict=True) if e)
    names = sorted(set(bridges))
    found = lookup.get(table, "isolated", [ifname_key(n) for n in names])
    sets["isolated"] = frozenset(n for n, e in zip(names, found, strict=True) if e)
    found = lookup.get(table, nft.PAIR_SET, [ifname_key(n) * 2 for n in names])
    sets[nft.PAIR_SET] = frozenset(f"{n} . {n}" for n, e in zip(names, found, strict=True) if e)
    sets[nft.NET_SET] = frozenset(_intervals_present(lookup, table, cidrs))
    dnat: dict[str, str] = {}
    snat: dict[str, str] = {}
    want_f, want_x = set(floating), set(fixed)
    asked_f: set[str] = set()
    asked_x: set[str] = set()
    for _ in range(3):
        new_f, new_x = sorted(want_f - asked_f), sorted(want_x - asked_x)
        if not new_f and not new_x:
            break
        for address, element in zip(
            new_f, lookup.get(table, nft.DNAT_MAP, [ipv4_key(a) for a in new_f]), strict=True
        ):
            if element is not None and element.data is not None:
                dnat[address] = socket.inet_ntoa(element.data[:4])
                want_x.add(dnat[address])
        for address, element in zip(
            new_x, lookup.get(table, nft.SNAT_MAP, [ipv4_key(a) for a in new_x]), strict=True
        ):
            if element is not None and element.data is not None:
                snat[address] = socket.inet_ntoa(element.data[:4])
                want_f.add(snat[address])
        asked_f.update(new_f)
        asked_x.update(new_x)
    return nft.NftState(exists=True, layout_ok=True, sets=sets, dnat=dnat, snat=snat)


def _intervals_present(lookup: Lookup, table: str, cidrs: Iterable[str]) -> list[str]:
    """The networks that are exactly an interval of the (interval) set of fixed ranges.

    A lookup answers with the interval the key falls in, named by its first address:
    the network is there when its first and last address fall in an interval that
    starts at the first, and the address after it does not.
    """
    networks = sorted({ipaddress.IPv4Network(c) for c in cidrs})
    keys = []
    for network in networks:
        first = int(network.network_address)
        after = first + network.num_addresses
        keys += [
            struct.pack("!I", first),
            struct.pack("!I", after - 1),
            struct.pack("!I", after & 0xFFFFFFFF),
        ]
    found = lookup.get(table, nft.NET_SET, keys)
    present = []
    for index, network in enumerate(networks):
        start, last, beyond = found[3 * index : 3 * index + 3]
        key = struct.pack("!I", int(network.network_address))
        if _starts_at(start, key) and _starts_at(last, key) and not _starts_at(beyond, key):
            present.append(str(network))
    return present


def _starts_at(element: Element | None, first: bytes) -> bool:
    return element is not None and not element.interval_end and element.key == first
