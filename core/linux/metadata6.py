"""The metadata service over IPv6: ``http://[fe80::a9fe:a9fe%eth0]/``, as OpenStack has it.

A guest reaches fe80::a9fe:a9fe only if something on its link answers neighbour
solicitations for it, so each bridge of a dual-stack network this host serves carries
the address, but deprecated (preferred lifetime 0, valid forever): the kernel answers for
it and accepts connections to it, yet avoids it as the source of anything of its own,
and dnsmasq sends its router adverts from the bridge's link-local address with the
longest preferred lifetime, which is the kernel's own (EUI-64) one. One moment remains:
while that address is still tentative (the bridge just got its first port), the kernel
has no other link-local source for an advert than the metadata one; the table's output
chain drops any router advert from fe80::a9fe:a9fe, and the next advert comes from the
bridge's own. Guests so keep exactly one default router, as the tests check from inside
them; without the rule, guests that came up with the bridge had two.

A DNAT then sends each bridge's connections to fe80::a9fe:a9fe port 80 to the metadata
server at the bridge's IPv6 gateway here (the /64's ``::1``, or a multi-host host's own
address), keeping the source, as the
IPv4 DNAT does for 169.254.169.254: the server knows the network by the address the
connection arrived at and the instance by its source, the guest's link-local or global
address, which IPv6 anti-spoofing makes its own. The DNAT and a guard that lets only
DNATed connections (and the host's own) reach the server's port over IPv6 live in a
small table of their own, ``ip6 netcon_metadata6``, there while the host runs a metadata
server and serves a dual-stack network; only then does the server listen on IPv6 too
(``--listen-v6``), so no IPv6 port of it is ever unguarded.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import HostError
from core.linux import namespace, nft
from core.linux.desired import DesiredNetwork
from core.linux.metadata.spec import DesiredMetadata
from core.linux.netlink import (
    IFA_ADDRESS,
    IFA_CACHEINFO,
    IFA_F_NODAD,
    RTM_DELADDR,
    RTM_NEWADDR,
    Netlink,
    Request,
    _attr,
)
from core.linux.operations import Operation, Phase

if TYPE_CHECKING:
    from core.linux.execution import Execution

ADDRESS = "fe80::a9fe:a9fe"
PREFIXLEN = 64
FAMILY = "ip6"
TABLE = "netcon_metadata6"
ROUTES = "gateways"
# Valid forever (the kernel's INFINITY_LIFE_TIME), preferred never.
_FOREVER = 0xFFFFFFFF
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_IFADDR = struct.Struct("=BBBBI")


@dataclass(frozen=True, order=True)
class Route6:
    """Guests on ``bridge`` are sent to the server at their /64's ``gateway``."""

    bridge: str
    gateway: str


@dataclass(frozen=True)
class ObservedMetadata6:
    # Bridges (any link) that carry fe80::a9fe:a9fe.
    carrying: frozenset[str] = frozenset()
    table: bool = False
    routes: dict[str, tuple[str, int]] = field(default_factory=dict)
    guarded_port: int | None = None
    unread: bool = False


def listening_v6(want: DesiredMetadata) -> DesiredMetadata:
    """The server's command line with its IPv6 socket: the same port on every IPv6
    address (only DNATed connections reach it, as over IPv4)."""
    return replace(want, argv=(*want.argv, "--listen-v6", f"[::]:{want.port}"))


def wanted_routes(networks: Sequence[DesiredNetwork]) -> tuple[Route6, ...]:
    """A route for each network this host serves IPv6 and metadata for (a FlatDHCP or
    VLAN network whose /64 gateway is here)."""
    return tuple(
        sorted(
            Route6(n.bridge, n.ipv6.gateway)
            for n in networks
            if n.ipv6 is not None and n.serves_dhcp and n.gateway is not None
        )
    )


# -- what the host has ---------------------------------------------------------------


def carrying(netns: str | None) -> frozenset[str]:
    """The links of ``netns`` that have fe80::a9fe:a9fe (from /proc/net/if_inet6)."""
    wanted = ipaddress.IPv6Address(ADDRESS).packed.hex()
    found = set()
    try:
        with namespace.entered(netns), open("/proc/net/if_inet6") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return frozenset()  # no IPv6 in this kernel
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and fields[0] == wanted:
            found.add(fields[5])
    return frozenset(found)


def marker(state_dir: Path) -> Path:
    """There while the table is: a host that never had it is not asked for it."""
    return state_dir / "metadata6-table"


def observe(
    nft_binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    wanted: bool,
    may_change: bool = True,
) -> ObservedMetadata6:
    have = carrying(netns)
    if not wanted and not marker(state_dir).exists():
        return ObservedMetadata6(carrying=have)
    (result,) = nft.listings(nft_binary, netns, [f"list table {FAMILY} {TABLE}"], numeric=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return ObservedMetadata6(carrying=have)
        if not may_change:
            return ObservedMetadata6(carrying=have, unread=True)
        raise HostError(f"nft: cannot read table {FAMILY} {TABLE}: {result.stderr.strip()}")
    try:
        objects = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError):
        raise HostError(f"nft: unreadable listing of table {FAMILY} {TABLE}") from None
    routes, port, layout = _parse(objects)
    return ObservedMetadata6(
        carrying=have, table=True, routes=routes, guarded_port=port if layout else None
    )


def _parse(objects: list[dict[str, Any]]) -> tuple[dict[str, tuple[str, int]], int | None, bool]:
    routes: dict[str, tuple[str, int]] = {}
    ports: set[int] = set()
    chains: set[str] = set()
    rules = 0
    has_map = False
    for obj in objects:
        if "map" in obj and obj["map"]["name"] == ROUTES:
            has_map = True
            for bridge, target in obj["map"].get("elem", []):
                address, port = target["concat"]
                routes[str(bridge)] = (str(address), int(port))
        elif "chain" in obj:
            chains.add(obj["chain"]["name"])
        elif "rule" in obj:
            rules += 1
            if obj["rule"]["chain"] != "input":
                continue
            for expr in obj["rule"]["expr"]:
                match = expr.get("match")
                left = match.get("left", {}) if match else {}
                if left.get("payload", {}).get("field") == "dport" and isinstance(
                    match["right"], int
                ):
                    ports.add(match["right"])
    layout = (
        has_map and chains == {"prerouting", "input", "output"} and rules == 4 and len(ports) == 1
    )
    return routes, (next(iter(ports)) if ports else None), layout


# -- operations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Metadata6Operation(Operation):
    """A change to fe80::a9fe:a9fe on a bridge, or to the IPv6 metadata DNAT table:
    carried out with the rest of the apply's IPv6 side, before dnsmasq starts."""

    phase = Phase.IPV6_SIDE

    def execute(self, run: Execution) -> None:
        run.ipv6_side.append(self)


@dataclass(frozen=True)
class AddMetadataAddress6(Metadata6Operation):
    bridge: str

    def describe(self) -> str:
        return f"add address {ADDRESS}/{PREFIXLEN} to {self.bridge} (metadata; never preferred)"


@dataclass(frozen=True)
class DeleteMetadataAddress6(Metadata6Operation):
    bridge: str

    def describe(self) -> str:
        return f"delete address {ADDRESS}/{PREFIXLEN} from {self.bridge} (no metadata here)"


@dataclass(frozen=True)
class CreateMetadataTable6(Metadata6Operation):
    replace: bool
    port: int

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return f"{verb} nftables table {FAMILY} {TABLE} (DNAT of [{ADDRESS}]:80 for guests)"


@dataclass(frozen=True)
class DeleteMetadataTable6(Metadata6Operation):
    def describe(self) -> str:
        return f"delete nftables table {FAMILY} {TABLE} (no network here serves metadata)"


@dataclass(frozen=True)
class SetMetadataRoute6(Metadata6Operation):
    bridge: str
    gateway: str
    port: int
    replaces: bool = False

    def describe(self) -> str:
        return f"DNAT [{ADDRESS}]:80 from guests on {self.bridge} to [{self.gateway}]:{self.port}"


@dataclass(frozen=True)
class DeleteMetadataRoute6(Metadata6Operation):
    bridge: str

    def describe(self) -> str:
        return f"no IPv6 metadata DNAT for {self.bridge} any more"


METADATA6_OPS = (
    AddMetadataAddress6,
    DeleteMetadataAddress6,
    CreateMetadataTable6,
    DeleteMetadataTable6,
    SetMetadataRoute6,
    DeleteMetadataRoute6,
)


def plan(
    routes: tuple[Route6, ...],
    have: ObservedMetadata6,
    *,
    serving: bool,
    port: int,
    nft_found: bool,
    bridges: frozenset[str] | None = None,
    held: frozenset[str] = frozenset(),
) -> list[Operation]:
    """What makes the addresses and the table match ``routes``. ``serving``: the host
    runs a metadata server (the table and its guard go with it). ``bridges``: a scoped
    plan, which compares only these bridges' address and route."""
    ops: list[Operation] = []
    wanted = {r.bridge: (r.gateway, port) for r in routes if serving}
    looked = (lambda b: b in bridges) if bridges is not None else (lambda b: True)
    for bridge in sorted(set(wanted) - have.carrying):
        if looked(bridge) and bridge not in held:
            ops.append(AddMetadataAddress6(bridge))
    for bridge in sorted(have.carrying - set(wanted)):
        if looked(bridge) and bridge not in held:
            ops.append(DeleteMetadataAddress6(bridge))
    if not nft_found or have.unread:
        return ops
    if not table_wanted(routes, have, serving=serving, bridges=bridges):
        if have.table:
            ops.append(DeleteMetadataTable6())
        return ops
    current = dict(have.routes)
    if not have.table or have.guarded_port != port:
        ops.append(CreateMetadataTable6(have.table, port))
        current = {}
    for bridge in sorted(set(current) - set(wanted)):
        if looked(bridge) and bridge not in held:
            ops.append(DeleteMetadataRoute6(bridge))
    for bridge, (gateway, to_port) in sorted(wanted.items()):
        if looked(bridge) and bridge not in held and current.get(bridge) != (gateway, to_port):
            ops.append(SetMetadataRoute6(bridge, gateway, to_port, replaces=bridge in current))
    return ops


def table_wanted(
    routes: tuple[Route6, ...],
    have: ObservedMetadata6,
    *,
    serving: bool,
    bridges: frozenset[str] | None = None,
) -> bool:
    """Whether the table (and so the server's IPv6 socket, which it guards) is wanted: a
    server runs and a dual-stack network is served. A scoped plan sees only the networks
    of ``bridges``; the table's routes tell it of the others."""
    if not serving:
        return False
    if routes:
        return True
    return bridges is not None and any(bridge not in bridges for bridge in have.routes)


# -- carrying them out ---------------------------------------------------------------


def _address_request(index: int, add: bool) -> Request:
    packed = socket.inet_pton(socket.AF_INET6, ADDRESS)
    # RT_SCOPE_LINK (253); no address detection: the host answers for it at once.
    body = _IFADDR.pack(socket.AF_INET6, PREFIXLEN, IFA_F_NODAD, 253, index)
    body += _attr(IFA_ADDRESS, packed)
    if not add:
        return Request(RTM_DELADDR, _NLM_F_REQUEST | _NLM_F_ACK, body)
    # struct ifa_cacheinfo: preferred 0, valid forever (the kernel fills in the rest).
    body += _attr(IFA_CACHEINFO, struct.pack("=IIII", 0, _FOREVER, 0, 0))
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    return Request(RTM_NEWADDR, flags, body)


def apply_addresses(ops: Sequence[object], link: Netlink) -> None:
    """The plan's fe80::a9fe:a9fe additions and removals, in one netlink batch."""
    changes = [op for op in ops if isinstance(op, (AddMetadataAddress6, DeleteMetadataAddress6))]
    if not changes:
        return
    indexes = link.indexes({op.bridge for op in changes})
    # A bridge deleted by this apply took its address with it.
    present = [op for op in changes if op.bridge in indexes]
    requests = [
        _address_request(indexes[op.bridge], isinstance(op, AddMetadataAddress6)) for op in present
    ]
    for op, errno in zip(present, link.run(requests), strict=True):
        # Already there (EEXIST) or already gone (EADDRNOTAVAIL): as wanted.
        if errno not in (0, 17, 99):
            raise HostError(f"netlink: {op.describe()}: errno {errno}")


def record(ops: Sequence[object], state_dir: Path) -> None:
    """The table's marker follows what the plan did to the table (once nft has)."""
    if any(isinstance(op, CreateMetadataTable6) for op in ops):
        state_dir.mkdir(parents=True, exist_ok=True)
        marker(state_dir).touch()
    elif any(isinstance(op, DeleteMetadataTable6) for op in ops):
        marker(state_dir).unlink(missing_ok=True)


def table_text(ops: Sequence[object]) -> str:
    lines: list[str] = []
    table = f"{FAMILY} {TABLE}"
    for op in ops:
        if isinstance(op, DeleteMetadataTable6):
            lines.append(f"delete table {table}")
        elif isinstance(op, CreateMetadataTable6):
            if op.replace:
                lines.append(f"delete table {table}")
            lines += [
                f"add table {table}",
                f"add map {table} {ROUTES} {{ type ifname : ipv6_addr . inet_service; }}",
                f"add chain {table} prerouting "
                "{ type nat hook prerouting priority -100; policy accept; }",
                f"add rule {table} prerouting ip6 daddr {ADDRESS} tcp dport 80 "
                f"dnat ip6 to iifname map @{ROUTES}",
                f"add chain {table} input {{ type filter hook input priority 0; policy accept; }}",
                # Only connections the DNAT made, or the host's own, reach the server.
                f"add rule {table} input tcp dport {op.port} ct status dnat accept",
                f'add rule {table} input tcp dport {op.port} iifname != "lo" drop',
                # No router advert leaves from the metadata address, whatever the kernel
                # picks as source while the bridge's own link-local is still tentative.
                f"add chain {table} output "
                "{ type filter hook output priority 0; policy accept; }",
                f"add rule {table} output ip6 saddr {ADDRESS} icmpv6 type nd-router-advert drop",
            ]
        elif isinstance(op, SetMetadataRoute6):
            if op.replaces:
                lines.append(f'delete element {table} {ROUTES} {{ "{op.bridge}" }}')
            lines.append(
                f'add element {table} {ROUTES} {{ "{op.bridge}" : {op.gateway} . {op.port} }}'
            )
        elif isinstance(op, DeleteMetadataRoute6):
            lines.append(f'delete element {table} {ROUTES} {{ "{op.bridge}" }}')
    return "".join(line + "\n" for line in lines)
