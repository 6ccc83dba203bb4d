"""What one host says over IPv6 as a router stays off a multi-host network's segment.

Every host with instances of a multi-host dual-stack network advertises the /64 from its
own bridge and answers DHCPv6 for its own instances. The hosts share one segment (the
VXLAN or VLAN link, or the bridge_interface, in each bridge), so without a filter a
guest would hear every host's adverts and take each as a default router, and be
answered by any host's DHCPv6 server. A small table of its own, ``bridge
netcon_segment6``, drops router adverts, redirects and DHCPv6 server replies (UDP from
port 547) going out to such a segment link, whether this host sent them (output) or a
guest's frame is forwarded (forward), and those coming in from it (forward, input): each
host's guests hear their own host only. Neighbour discovery crosses freely: each host's
IPv6 gateway is an address of its own, so guests on different hosts still reach each
other, and their neighbours' names, over the segment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import HostError
from core.linux import nft
from core.linux.desired import DesiredNetwork
from core.linux.operations import Operation, Phase

if TYPE_CHECKING:
    from core.linux.execution import Execution

FAMILY = "bridge"
TABLE = "netcon_segment6"
SET = "segments"
# What only a router or a DHCPv6 server sends (as the RA guard on instance ports).
_ROUTER_ONLY = (
    "ether type ip6 meta l4proto ipv6-icmp icmpv6 type { nd-router-advert, nd-redirect }",
    "ether type ip6 meta l4proto udp udp sport 547",
)
# (chain, hook, direction of the segment link in it)
_CHAINS = (("forward", "forward", "iifname"), ("forward", "forward", "oifname"),
           ("input", "input", "iifname"), ("output", "output", "oifname"))  # fmt: skip
RULES = len(_CHAINS) * len(_ROUTER_ONLY)


def segment_links(networks: Sequence[DesiredNetwork]) -> frozenset[str]:
    """The links that join this host's bridges of multi-host dual-stack networks to the
    other hosts."""
    found = set()
    for net in networks:
        if not (net.multi_host and net.dual_stack and net.owns_bridge):
            continue
        link = net.segment.ifname if net.segment is not None else net.bridge_interface
        if link is not None:
            found.add(link)
    return frozenset(found)


@dataclass(frozen=True)
class ObservedSegments6:
    table: bool = False
    layout_ok: bool = False
    links: frozenset[str] = frozenset()
    unread: bool = False


def marker(state_dir: Path) -> Path:
    """There while the table is: a host that never had it is not asked for it."""
    return state_dir / "segment6-table"


def observe(
    nft_binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    wanted: bool,
    may_change: bool = True,
) -> ObservedSegments6:
    if not wanted and not marker(state_dir).exists():
        return ObservedSegments6()
    (result,) = nft.listings(nft_binary, netns, [f"list table {FAMILY} {TABLE}"], numeric=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return ObservedSegments6()
        if not may_change:
            return ObservedSegments6(unread=True)
        raise HostError(f"nft: cannot read table {FAMILY} {TABLE}: {result.stderr.strip()}")
    try:
        objects = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError):
        raise HostError(f"nft: unreadable listing of table {FAMILY} {TABLE}") from None
    links: set[str] = set()
    has_set = False
    rules = 0
    chains = set()
    for obj in objects:
        if "set" in obj and obj["set"]["name"] == SET:
            has_set = True
            links.update(str(e) for e in obj["set"].get("elem", []))
        elif "chain" in obj:
            chains.add(obj["chain"]["name"])
        elif "rule" in obj:
            rules += 1
    layout = has_set and chains == {c for c, _, _ in _CHAINS} and rules == RULES
    return ObservedSegments6(True, layout, frozenset(links))


@dataclass(frozen=True)
class Segment6Operation(Operation):
    """A change to the multi-host segment filter: carried out with the rest of the
    apply's IPv6 side, before dnsmasq starts."""

    phase = Phase.IPV6_SIDE

    def execute(self, run: Execution) -> None:
        run.ipv6_side.append(self)


@dataclass(frozen=True)
class CreateSegmentTable6(Segment6Operation):
    replace: bool

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return (
            f"{verb} nftables table {FAMILY} {TABLE} (no host's IPv6 adverts or DHCPv6 "
            "replies cross a multi-host segment)"
        )


@dataclass(frozen=True)
class DeleteSegmentTable6(Segment6Operation):
    def describe(self) -> str:
        return f"delete nftables table {FAMILY} {TABLE} (no multi-host dual-stack network here)"


@dataclass(frozen=True)
class SetSegment6(Segment6Operation):
    link: str
    add: bool

    def describe(self) -> str:
        if self.add:
            return f"keep IPv6 adverts and DHCPv6 replies from crossing {self.link}"
        return f"no IPv6 advert filter on {self.link} any more"


SEGMENT6_OPS = (CreateSegmentTable6, DeleteSegmentTable6, SetSegment6)


def plan(
    wanted: frozenset[str],
    have: ObservedSegments6,
    *,
    nft_found: bool,
    scoped: bool = False,
) -> list[Operation]:
    """What makes the table match ``wanted``. A ``scoped`` plan adds what its networks
    need and removes nothing (it does not see the other networks)."""
    if not nft_found or have.unread:
        return []
    if not wanted:
        return [DeleteSegmentTable6()] if have.table and not scoped else []
    ops: list[Operation] = []
    links = have.links
    if not have.table or not have.layout_ok:
        ops.append(CreateSegmentTable6(have.table))
        links = frozenset()
    if not scoped:
        ops += [SetSegment6(link, add=False) for link in sorted(links - wanted)]
    ops += [SetSegment6(link, add=True) for link in sorted(wanted - links)]
    return ops


def table_text(ops: Sequence[object]) -> str:
    lines: list[str] = []
    table = f"{FAMILY} {TABLE}"
    for op in ops:
        if isinstance(op, DeleteSegmentTable6):
            lines.append(f"delete table {table}")
        elif isinstance(op, CreateSegmentTable6):
            if op.replace:
                lines.append(f"delete table {table}")
            lines += [f"add table {table}", f"add set {table} {SET} {{ type ifname; }}"]
            for chain in dict.fromkeys(c for c, _, _ in _CHAINS):
                hook = next(h for c, h, _ in _CHAINS if c == chain)
                lines.append(
                    f"add chain {table} {chain} "
                    f"{{ type filter hook {hook} priority -10; policy accept; }}"
                )
            for chain, _, direction in _CHAINS:
                for what in _ROUTER_ONLY:
                    lines.append(f"add rule {table} {chain} {direction} @{SET} {what} drop")
        elif isinstance(op, SetSegment6):
            verb = "add" if op.add else "delete"
            lines.append(f'{verb} element {table} {SET} {{ "{op.link}" }}')
    return "".join(line + "\n" for line in lines)


def record(ops: Sequence[object], state_dir: Path) -> None:
    """The table's marker follows what the plan did to the table (once nft has)."""
    if any(isinstance(op, CreateSegmentTable6) for op in ops):
        state_dir.mkdir(parents=True, exist_ok=True)
        marker(state_dir).touch()
    elif any(isinstance(op, DeleteSegmentTable6) for op in ops):
        marker(state_dir).unlink(missing_ok=True)
