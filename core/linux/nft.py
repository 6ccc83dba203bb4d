"""The one nftables table netcon owns: floating-IP NAT maps, SNAT and project isolation.

Every address-dependent part is an element of a set or map, so associating one
floating IP adds one element to each NAT map and never rewrites the table. Changes are
built as nftables' JSON objects and go to nft (its library in this process, or the
program) as one batch in nft's own syntax (nfttext.py), which nftables applies
atomically.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import ipaddress
import json
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import HostError
from core.linux import namespace, nfttext
from core.linux.nfttext import UnknownShape

FAMILY = "ip"
TABLE = "netcon"
IFNAME_SETS = ("public_ifs", "isolated")
# "br100 . br100" per isolated bridge: traffic that stays within one bridge. With
# br_netfilter (common, and on here) bridged packets pass the forward hook with the
# bridge as both input and output; nft cannot compare two interfaces, so this set
# tells "same bridge" apart in one element per network.
PAIR_SET = "same_bridge"
NET_SET = "fixed_nets"
DNAT_MAP = "fip_dnat"
SNAT_MAP = "fip_snat"
# Every nftables table netcon owns, as (family, name): read together by read_owned().
OWNED_TABLES: tuple[tuple[str, str], ...] = ((FAMILY, TABLE),)


def _match(left: dict[str, Any], right: str) -> dict[str, Any]:
    return {"match": {"op": "==", "left": left, "right": right}}


def _nat_map(kind: str, field_name: str, name: str) -> dict[str, Any]:
    key = {"payload": {"protocol": "ip", "field": field_name}}
    return {kind: {"addr": {"map": {"key": key, "data": f"@{name}"}}}}


_OIF_PUBLIC = _match({"meta": {"key": "oifname"}}, "@public_ifs")
# A connection whose destination was a floating IP (DNATed to an instance here).
_DNATED = {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}
# The packet mark bit of the connections this host NATed (see the "hairpin" chain).
HAIRPIN_MARK = 0x00100000
_MARK = {"meta": {"key": "mark"}}
_FROM_FIXED = _match({"payload": {"protocol": "ip", "field": "saddr"}}, f"@{NET_SET}")
# chain: (type, hook, priority, rules)
CHAINS: dict[str, tuple[str, str, int, list[list[dict[str, Any]]]]] = {
    "prerouting": ("nat", "prerouting", -100, [[_nat_map("dnat", "daddr", DNAT_MAP)]]),
    # Hairpin across a segment: a guest behind a segment link (or flat uplink) calling a
    # floating IP of another guest behind that same link. br_netfilter, seeing the DNATed
    # destination on the bridge the packet came from, bridges it instead of routing it,
    # back out the link it arrived on, which a bridge does only in hairpin mode; and in
    # hairpin mode a segment link would also reflect every flooded frame across the
    # underlay. So the packets of connections this host NATed carry a mark, and the
    # bridge table (secgroups/tables.py) lets back out an uplink only those.
    "hairpin": (
        "filter",
        "prerouting",
        -99,
        [
            [
                _DNATED,
                {"mangle": {"key": _MARK, "value": {"|": [_MARK, HAIRPIN_MARK]}}},
            ]
        ],
    ),
    # The network host itself reaching a floating IP takes the output hook.
    "output": ("nat", "output", -100, [[_nat_map("dnat", "daddr", DNAT_MAP)]]),
    "postrouting": (
        "nat",
        "postrouting",
        100,
        [
            # An instance with a floating IP leaves with it as source; NAT statements end
            # the chain, so the masquerade below is only for the others.
            [_OIF_PUBLIC, _nat_map("snat", "saddr", SNAT_MAP)],
            [_OIF_PUBLIC, _FROM_FIXED, {"masquerade": None}],
            # Hairpin: an instance reaching a floating IP of this host (its own or a
            # neighbour's) is sent back into a bridge. Unless its source changes, the
            # server answers it directly, from its fixed address, and the client drops
            # a reply from an address it never called. So it arrives from the client's
            # own floating IP, or from the gateway when the client has none, and the
            # answer comes back through here to be NATed in reverse.
            [_DNATED, _FROM_FIXED, _nat_map("snat", "saddr", SNAT_MAP)],
            [_DNATED, _FROM_FIXED, {"masquerade": None}],
        ],
    ),
    "forward": (
        "filter",
        "forward",
        0,
        [
            # A floating IP is public: a project's instance reaches another project's
            # through it as anyone would, and isolation is about the fixed addresses.
            [_DNATED, {"accept": None}],
            [
                _match({"meta": {"key": "iifname"}}, "@isolated"),
                _match({"meta": {"key": "oifname"}}, "@isolated"),
                {
                    "match": {
                        "op": "!=",
                        "left": {
                            "concat": [{"meta": {"key": "iifname"}}, {"meta": {"key": "oifname"}}]
                        },
                        "right": f"@{PAIR_SET}",
                    }
                },
                {"drop": None},
            ],
            # A guest's packet leaves for the public side only from a host that holds its
            # network's gateway (a route back to it through the bridge it came in on):
            # once a fenced host's gateway address has gone with its lease, a guest that
            # still has its old ARP entry is not routed and NATed out from there.
            [
                _OIF_PUBLIC,
                _match({"payload": {"protocol": "ip", "field": "saddr"}}, f"@{NET_SET}"),
                {
                    "match": {
                        "op": "==",
                        "left": {"fib": {"result": "oif", "flags": ["saddr", "iif"]}},
                        "right": False,
                    }
                },
                {"drop": None},
            ],
        ],
    ),
}


@dataclass(frozen=True)
class NftState:
    exists: bool = False
    # False when the table is there but not in the shape this version of netcon builds.
    layout_ok: bool = False
    sets: dict[str, frozenset[str]] = field(default_factory=dict)
    dnat: dict[str, str] = field(default_factory=dict)
    snat: dict[str, str] = field(default_factory=dict)


def table_commands(replace: bool) -> list[dict[str, Any]]:
    """The batch that (re)creates the empty table: sets, maps, chains and rules."""
    base = {"family": FAMILY, "table": TABLE}
    commands: list[dict[str, Any]] = []
    if replace:
        commands.append({"delete": {"table": {"family": FAMILY, "name": TABLE}}})
    commands.append({"add": {"table": {"family": FAMILY, "name": TABLE}}})
    for name in IFNAME_SETS:
        commands.append({"add": {"set": {**base, "name": name, "type": "ifname"}}})
    commands.append({"add": {"set": {**base, "name": PAIR_SET, "type": ["ifname", "ifname"]}}})
    commands.append(
        {"add": {"set": {**base, "name": NET_SET, "type": "ipv4_addr", "flags": ["interval"]}}}
    )
    for name in (DNAT_MAP, SNAT_MAP):
        commands.append(
            {"add": {"map": {**base, "name": name, "type": "ipv4_addr", "map": "ipv4_addr"}}}
        )
    for chain, (kind, hook, prio, rules) in CHAINS.items():
        commands.append(
            {
                "add": {
                    "chain": {
                        **base,
                        "name": chain,
                        "type": kind,
                        "hook": hook,
                        "prio": prio,
                        "policy": "accept",
                    }
                }
            }
        )
        for expr in rules:
            commands.append({"add": {"rule": {**base, "chain": chain, "expr": expr}}})
    return commands


def element_command(verb: str, name: str, elems: list[Any]) -> dict[str, Any]:
    return {verb: {"element": {"family": FAMILY, "table": TABLE, "name": name, "elem": elems}}}


def set_element(set_name: str, value: str) -> Any:
    """The JSON form of a set element kept as text by the planner."""
    if set_name == NET_SET:
        return net_element(value)
    if set_name == PAIR_SET:
        return {"concat": value.split(" . ")}
    return value


def net_element(cidr: str) -> dict[str, Any]:
    network = ipaddress.IPv4Network(cidr)
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


TableKey = tuple[str, str]


def read_owned(
    binary: str, netns: str | None, tables: tuple[TableKey, ...] = OWNED_TABLES
) -> dict[TableKey, list[dict[str, Any]]]:
    """The one nft read of an apply: the JSON objects of each netcon table that exists
    (its table, sets, maps, chains and rules), by (family, name).

    One nft process: ``list table`` for a single table, ``list ruleset`` (keeping only
    netcon's) for several, since nft cannot list two tables in one run.
    """
    if len(tables) == 1:
        ((family, name),) = tables
        command = f"list table {family} {name}"
    else:
        command = "list ruleset"
    (result,) = listings(binary, netns, [command], numeric=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return {}
        raise HostError(f"nft: cannot read netcon's tables: {_first_line(result.stderr)}")
    try:
        objects = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError):
        raise HostError("nft: unreadable listing of netcon's tables") from None
    wanted = set(tables)
    found: dict[TableKey, list[dict[str, Any]]] = {}
    for obj in objects:
        for kind, item in obj.items():
            if not isinstance(item, dict):
                continue
            key = (item.get("family"), item.get("name") if kind == "table" else item.get("table"))
            if key in wanted:
                found.setdefault(key, []).append(obj)  # type: ignore[arg-type]
    return found


def listings(
    binary: str, netns: str | None, commands: Sequence[str], *, numeric: bool = True
) -> list[subprocess.CompletedProcess[str]]:
    """Read commands (``list table inet netcon_metadata``) as ``nft -j [-n]`` runs them:
    through libnftables in this process when ``binary`` is the default program (no program
    start, one entry into the namespace), else nft processes run side by side."""
    library = library_for(binary)
    if library is None:
        flags = ["-j", "-n"] if numeric else ["-j"]
        return namespace.run_all(netns, [[binary, *flags, *c.split()] for c in commands])
    with namespace.entered(netns):
        return [
            subprocess.CompletedProcess([binary, c], *library.listing(c, numeric=numeric))
            for c in commands
        ]


class Nft:
    def __init__(self, binary: str, netns: str | None) -> None:
        self.binary = binary
        self.netns = netns
        # The libnftables context of this namespace, kept until close(): closing its
        # netlink socket waits for the kernel to release what a batch deleted (an RCU
        # grace period, 10-30 ms on a busy host), which the change itself does not need.
        self._ctx: int | None = None
        # A context is not safe in two threads at once (its cache, its buffers).
        self._ctx_lock = threading.Lock()

    def close(self) -> None:
        library = _library()
        with self._ctx_lock:
            if self._ctx is not None and library is not None:
                library.free(self._ctx)
            self._ctx = None

    def observe(self) -> NftState:
        owned = read_owned(self.binary, self.netns)
        objects = owned.get((FAMILY, TABLE))
        return NftState() if objects is None else _parse(objects)

    def run(self, commands: list[dict[str, Any]]) -> None:
        if not commands:
            return
        try:
            payload = nfttext.batch(commands)
        except (UnknownShape, KeyError, TypeError, ValueError) as error:
            raise HostError(f"nft: cannot write the batch in nft's syntax: {error}") from None
        library = _library() if self.binary == DEFAULT_BINARY else None
        if library is not None:
            # The library the nft program is made of, in this process: the same batch,
            # parsed and committed the same way, without starting a program (which
            # costs more than the batch itself on a busy host).
            with self._ctx_lock, namespace.entered(self.netns):
                if self._ctx is None:
                    self._ctx = library.context()
                failure = library.run(payload, self._ctx)
            if failure is not None:
                raise HostError(f"nft: {_first_line(failure)}")
            return
        result = namespace.run(self.netns, [self.binary, "-f", "-"], stdin=payload)
        if result.returncode != 0:
            raise HostError(f"nft: {_first_line(result.stderr)}")


# The nft_binary setting's default: the program found on PATH, whose library
# (libnftables) is used in process when present.
DEFAULT_BINARY = "nft"
# nft_ctx_output_set_flags: JSON output also makes the input parsed as JSON.
_OUTPUT_JSON = 1 << 4
# NFT_CTX_OUTPUT_NUMERIC_ALL (protocols, priorities, symbols, times): what `nft -n` sets.
_OUTPUT_NUMERIC_ALL = (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10)


def library_for(binary: str) -> _Libnftables | None:
    """libnftables, when ``binary`` is the default program (a path set on purpose is run
    as a program)."""
    return _library() if binary == DEFAULT_BINARY else None


class _Libnftables:
    """libnftables through ctypes: one context per batch, made in the calling thread's
    network namespace (its netlink socket belongs to the namespace it is opened in)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]

    def listing(self, command: str, *, numeric: bool = True) -> tuple[int, str, str]:
        """Run one read command (``list table ...``) as ``nft -j -n`` would: its status,
        its JSON output and its error text."""
        ctx = self.lib.nft_ctx_new(0)
        if not ctx:
            return 1, "", "cannot make an nftables context"
        try:
            flags = _OUTPUT_JSON | (_OUTPUT_NUMERIC_ALL if numeric else 0)
            self.lib.nft_ctx_output_set_flags(ctx, flags)
            self.lib.nft_ctx_buffer_output(ctx)
            self.lib.nft_ctx_buffer_error(ctx)
            status = self.lib.nft_run_cmd_from_buffer(ctx, command.encode())
            output = (self.lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
            error = (self.lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
            return (0 if status == 0 else 1), output, error
        finally:
            self.lib.nft_ctx_free(ctx)

    def run(self, payload: str, ctx: int | None = None) -> str | None:
        """Apply one batch (nft's syntax); None when it worked, else nft's error text. ``ctx``: a
        context kept by the caller (see :meth:`context`), else one for this batch."""
        own = ctx is None
        if ctx is None:
            ctx = self.context()
            if ctx is None:
                return "cannot make an nftables context"
        try:
            if self.lib.nft_run_cmd_from_buffer(ctx, payload.encode()) == 0:
                return None
            error = self.lib.nft_ctx_get_error_buffer(ctx)
            return (error or b"").decode(errors="replace") or "the batch was refused"
        finally:
            if own:
                self.free(ctx)

    def context(self) -> int | None:
        """A context for batches, bound to the namespace the thread is in now."""
        ctx = self.lib.nft_ctx_new(0)
        if not ctx:
            return None
        # Batches are nft's own syntax (nfttext.py), which it reads fastest.
        self.lib.nft_ctx_buffer_output(ctx)
        self.lib.nft_ctx_buffer_error(ctx)
        return int(ctx)

    def free(self, ctx: int) -> None:
        self.lib.nft_ctx_free(ctx)


@functools.cache
def _library() -> _Libnftables | None:
    # The soname first: find_library runs `ldconfig -p` (a process, and a read of the
    # whole library cache), which only a library under another name needs.
    for find in (lambda: "libnftables.so.1", lambda: ctypes.util.find_library("nftables")):
        name = find()
        if name is None:
            continue
        try:
            return _Libnftables(ctypes.CDLL(name))
        except (OSError, AttributeError):
            continue
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "failed without a message"


def _elem_text(elem: Any) -> str:
    if isinstance(elem, dict) and "prefix" in elem:
        return f"{elem['prefix']['addr']}/{elem['prefix']['len']}"
    if isinstance(elem, dict) and "concat" in elem:
        return " . ".join(str(part) for part in elem["concat"])
    if isinstance(elem, dict) and "elem" in elem:
        return _elem_text(elem["elem"]["val"])
    if isinstance(elem, str) and "/" not in elem:
        try:
            return f"{ipaddress.IPv4Address(elem)}/32"
        except ValueError:
            return elem
    return str(elem)


def _parse(objects: list[dict[str, Any]]) -> NftState:
    sets: dict[str, frozenset[str]] = {}
    maps: dict[str, dict[str, str]] = {}
    rules: dict[str, int] = {}
    chains: set[str] = set()
    for obj in objects:
        if "set" in obj:
            item = obj["set"]
            texts = [_elem_text(e) for e in item.get("elem", [])]
            if item.get("type") == "ifname":
                texts = [str(e) for e in item.get("elem", [])]
            sets[item["name"]] = frozenset(texts)
        elif "map" in obj:
            item = obj["map"]
            maps[item["name"]] = {str(k): str(v) for k, v in item.get("elem", [])}
        elif "chain" in obj:
            chains.add(obj["chain"]["name"])
        elif "rule" in obj:
            chain = obj["rule"]["chain"]
            rules[chain] = rules.get(chain, 0) + 1
    layout_ok = (
        set(sets) == {*IFNAME_SETS, PAIR_SET, NET_SET}
        and set(maps) == {DNAT_MAP, SNAT_MAP}
        and chains == set(CHAINS)
        and all(rules.get(name, 0) == len(spec[3]) for name, spec in CHAINS.items())
    )
    return NftState(
        exists=True,
        layout_ok=layout_ok,
        sets=sets,
        dnat=maps.get(DNAT_MAP, {}),
        snat=maps.get(SNAT_MAP, {}),
    )
