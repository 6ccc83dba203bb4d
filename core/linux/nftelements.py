"""A few elements of netcon's nftables sets and maps, looked up by key over nfnetlink.

The nft program answers any question about a table by first fetching all of it: with
5,000 floating IPs that is 20 ms, growing with the table, even to learn one element.
The kernel answers a lookup by key directly (NFT_MSG_GETSETELEM without a dump), so an
apply scoped to one floating IP asks for its own elements and nothing else, at the
same cost on any host. Changes still go through the nft program (core.linux.nft).
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import os
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
NFT_MSG_GETTABLE = 1
NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, NFT_MSG_GETSET, NFT_MSG_GETSETELEM = 4, 7, 10, 13
NFT_MSG_GETGEN = 16
NFTA_GEN_ID = 1
NFTA_TABLE_NAME = 1
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NFPROTO_BRIDGE = 7
NFPROTO_INET = 1
FAMILIES = {
    "ip": socket.AF_INET,
    "ip6": socket.AF_INET6,
    "inet": NFPROTO_INET,
    "bridge": NFPROTO_BRIDGE,
}
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_USE = 1, 3, 6
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_HANDLE, NFTA_RULE_USERDATA = 1, 2, 3, 7
# A rule's user data is type-length-value records; nft keeps its comment in type 0.
UDATA_RULE_COMMENT = 0
NFTA_DATA_VERDICT, NFTA_VERDICT_CHAIN = 2, 2
NFTA_SET_ELEM_TIMEOUT = 4
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


def ipv6_key(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, address)


def ifname_key(name: str) -> bytes:
    return name.encode().ljust(IFNAMSIZ, b"\0")


def ifname_text(key: bytes) -> str:
    return key.split(b"\0", 1)[0].decode(errors="replace")


def concat_key(*parts: bytes) -> bytes:
    """The key of a concatenation: each part padded to whole 32-bit registers."""
    return b"".join(part + b"\0" * (-len(part) % 4) for part in parts)


def mac_key(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


class Element:
    """What the kernel holds under a key: the element's own key (for an interval set, the
    start of the interval the key falls in), its data (maps), whether it ends one, the
    chain a verdict map's element jumps to, and whether it carries a timeout."""

    __slots__ = ("chain", "data", "interval_end", "key", "timeout")

    def __init__(
        self,
        key: bytes,
        data: bytes | None,
        interval_end: bool,
        chain: str | None = None,
        timeout: bool = False,
    ) -> None:
        self.key = key
        self.data = data
        self.interval_end = interval_end
        self.chain = chain
        self.timeout = timeout


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

    def tables_present(self, tables: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bool]:
        """Whether each (family, name) table exists: one request each, no listing."""
        answers = [
            self._ask(
                [(NFT_MSG_GETTABLE, _attr(NFTA_TABLE_NAME, name.encode() + b"\0"))],
                FAMILIES[family],
            )[0]
            for family, name in tables
        ]
        found: dict[tuple[str, str], bool] = {}
        for table, answer in zip(tables, answers, strict=True):
            if isinstance(answer, int) and answer not in (0, errno.ENOENT):
                raise HostError(
                    f"nfnetlink: cannot look up table {table[0]} {table[1]}: {os.strerror(answer)}"
                )
            found[table] = isinstance(answer, bytes)
        return found

    def generation(self) -> int:
        """The ruleset's generation id: every change of any table in this namespace, by
        anyone, gives a new one. One request, whatever the size of the ruleset."""
        answer = self._ask([(NFT_MSG_GETGEN, b"")], socket.AF_UNSPEC)[0]
        if isinstance(answer, int):
            raise HostError(f"nfnetlink: cannot read the ruleset generation: {os.strerror(answer)}")
        found = _attrs(answer, _HEADER.size + 4).get(NFTA_GEN_ID)
        if found is None or len(found) < 4:
            raise HostError("nfnetlink: the ruleset generation came without its id")
        return int(struct.unpack_from(">I", found)[0])

    def sets_exist(self, table: str, names: Iterable[str], family: int | None = None) -> bool:
        """Whether the table has all these sets and maps."""
        return all(self.sets_present(table, names, family).values())

    def sets_present(
        self, table: str, names: Iterable[str], family: int | None = None
    ) -> dict[str, bool]:
        """Whether the table has each of these sets and maps."""
        wanted = list(dict.fromkeys(names))
        requests = [
            (
                NFT_MSG_GETSET,
                _attr(NFTA_SET_TABLE, table.encode() + b"\0")
                + _attr(NFTA_SET_NAME, name.encode() + b"\0"),
            )
            for name in wanted
        ]
        answers = self._ask(requests, family)
        return {name: isinstance(a, bytes) for name, a in zip(wanted, answers, strict=True)}

    def chain_uses(
        self, table: str, names: Iterable[str], family: int | None = None
    ) -> dict[str, int | None]:
        """How many rules and map elements jump to each chain (None: no such chain)."""
        wanted = list(dict.fromkeys(names))
        requests = [
            (
                NFT_MSG_GETCHAIN,
                _attr(NFTA_CHAIN_TABLE, table.encode() + b"\0")
                + _attr(NFTA_CHAIN_NAME, name.encode() + b"\0"),
            )
            for name in wanted
        ]
        found: dict[str, int | None] = {}
        for name, answer in zip(wanted, self._ask(requests, family), strict=True):
            if not isinstance(answer, bytes):
                found[name] = None
                continue
            use = _attrs(answer, 20).get(NFTA_CHAIN_USE)
            found[name] = struct.unpack("!I", use[:4])[0] if use and len(use) >= 4 else 0
        return found

    def rules(
        self, table: str, chains: Sequence[str], family: int | None = None
    ) -> dict[str, tuple[tuple[str, int], ...]]:
        """Each chain's rules as (comment, handle), in order; the kernel lists one chain's
        rules alone when the dump names it."""
        found: dict[str, tuple[tuple[str, int], ...]] = {}
        for chain in chains:
            head = _attr(NFTA_RULE_TABLE, table.encode() + b"\0") + _attr(
                NFTA_RULE_CHAIN, chain.encode() + b"\0"
            )
            rules = []
            for msg in self._dump(NFT_MSG_GETRULE, head, family):
                attrs = _attrs(msg, 20)
                handle = struct.unpack("!Q", attrs[NFTA_RULE_HANDLE][:8])[0]
                rules.append((_comment(attrs.get(NFTA_RULE_USERDATA, b"")), handle))
            found[chain] = tuple(rules)
        return found

    def get(
        self, table: str, set_name: str, keys: Sequence[bytes], family: int | None = None
    ) -> list[Element | None]:
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
            for answer in self._ask(requests, family)
        ]

    def _dump(self, kind: int, body: bytes, family: int | None) -> list[bytes]:
        """The messages of one dump request."""
        seq = next(self._seq)
        payload = struct.pack("=BBH", self.family if family is None else family, 0, 0) + body
        header = _HEADER.pack(
            _HEADER.size + len(payload),
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            0,
        )
        self._send(header + payload)
        found: list[bytes] = []
        while True:
            for msg_type, got, msg in self._receive():
                if got != seq:
                    continue
                if msg_type == NLMSG_DONE:
                    return found
                if msg_type == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", msg, 16)[0]
                    if code == 0:
                        continue
                    if code == errno.ENOENT:
                        return found
                    raise HostError(f"nfnetlink dump failed: {os.strerror(code)}")
                found.append(msg)

    def _ask(
        self, requests: Sequence[tuple[int, bytes]], family: int | None = None
    ) -> list[bytes | int]:
        answers: list[bytes | int] = [0] * len(requests)
        by_seq: dict[int, int] = {}
        position = 0
        nfgen = struct.pack("=BBH", self.family if family is None else family, 0, 0)
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
    chain = None
    if NFTA_SET_ELEM_DATA in fields:
        value = _attrs(fields[NFTA_SET_ELEM_DATA])
        data = value.get(NFTA_DATA_VALUE)
        if NFTA_DATA_VERDICT in value:
            target = _attrs(value[NFTA_DATA_VERDICT]).get(NFTA_VERDICT_CHAIN)
            if target is not None:
                chain = target.split(b"\0", 1)[0].decode(errors="replace")
    flags_raw = fields.get(NFTA_SET_ELEM_FLAGS)
    flags = struct.unpack("!I", flags_raw[:4])[0] if flags_raw and len(flags_raw) >= 4 else 0
    return Element(
        key,
        data,
        bool(flags & NFT_SET_ELEM_INTERVAL_END),
        chain,
        NFTA_SET_ELEM_TIMEOUT in fields,
    )


def _comment(udata: bytes) -> str:
    offset = 0
    while offset + 2 <= len(udata):
        kind, length = udata[offset], udata[offset + 1]
        if kind == UDATA_RULE_COMMENT:
            return (
                udata[offset + 2 : offset + 2 + length].split(b"\0", 1)[0].decode(errors="replace")
            )
        offset += 2 + length
    return ""


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
