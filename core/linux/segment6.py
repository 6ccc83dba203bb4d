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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from core.linux import nfttable
from core.linux.desired import DesiredNetwork
from core.linux.nfttable import Chain, NftTable, ObservedNames
from core.linux.operations import Operation, Phase

if TYPE_CHECKING:
    from core.linux.execution import Execution

SET = "segments"
# What only a router or a DHCPv6 server sends (as the RA guard on instance ports).
_ROUTER_ONLY = (
    "ether type ip6 meta l4proto ipv6-icmp icmpv6 type { nd-router-advert, nd-redirect }",
    "ether type ip6 meta l4proto udp udp sport 547",
)


def _chain(hook: str, *directions: str) -> Chain:
    """A chain on ``hook`` that drops what only a router sends, going the ``directions``
    (iifname, oifname) of a segment link."""
    rules = tuple(f"{d} @{SET} {what} drop" for d in directions for what in _ROUTER_ONLY)
    return Chain(hook, f"type filter hook {hook} priority -10; policy accept;", rules)


SEGMENT_TABLE = NftTable(
    "bridge",
    "netcon_segment6",
    "segment6-table",
    sets=(("set", SET, "ifname"),),
    chains=(
        _chain("forward", "iifname", "oifname"),
        _chain("input", "iifname"),
        _chain("output", "oifname"),
    ),
)
FAMILY = SEGMENT_TABLE.family
TABLE = SEGMENT_TABLE.name
RULES = sum(len(chain.rules) for chain in SEGMENT_TABLE.chains)


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


def observe(
    nft_binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    wanted: bool,
    may_change: bool = True,
) -> ObservedNames:
    return nfttable.read_names(
        SEGMENT_TABLE, SET, nft_binary, netns, state_dir, wanted=wanted, may_change=may_change
    )


@dataclass(frozen=True)
class Segment6Operation(Operation):
    """A change to the multi-host segment filter: carried out with the rest of the
    apply's IPv6 side, before dnsmasq starts."""

    phase = Phase.IPV6_SIDE
    table: ClassVar[NftTable] = SEGMENT_TABLE
    table_present: ClassVar[bool | None] = None

    def execute(self, run: Execution) -> None:
        run.ipv6_side.append(self)

    def commands(self) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class CreateSegmentTable6(Segment6Operation):
    replace: bool
    table_present = True

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return (
            f"{verb} nftables table {FAMILY} {TABLE} (no host's IPv6 adverts or DHCPv6 "
            "replies cross a multi-host segment)"
        )

    def commands(self) -> list[str]:
        return SEGMENT_TABLE.create(self.replace)


@dataclass(frozen=True)
class DeleteSegmentTable6(Segment6Operation):
    table_present = False

    def describe(self) -> str:
        return f"delete nftables table {FAMILY} {TABLE} (no multi-host dual-stack network here)"

    def commands(self) -> list[str]:
        return SEGMENT_TABLE.delete()


@dataclass(frozen=True)
class SetSegment6(Segment6Operation):
    link: str
    add: bool

    def describe(self) -> str:
        if self.add:
            return f"keep IPv6 adverts and DHCPv6 replies from crossing {self.link}"
        return f"no IPv6 advert filter on {self.link} any more"

    def commands(self) -> list[str]:
        return [SEGMENT_TABLE.element(self.add, SET, f'"{self.link}"')]


SEGMENT6_OPS = (CreateSegmentTable6, DeleteSegmentTable6, SetSegment6)


def plan(
    wanted: frozenset[str],
    have: ObservedNames,
    *,
    nft_found: bool,
    scoped: bool = False,
) -> list[Operation]:
    """What makes the table match ``wanted`` (see ``nfttable.plan_names``)."""
    return nfttable.plan_names(
        wanted,
        have,
        nft_found=nft_found,
        create=CreateSegmentTable6,
        delete=DeleteSegmentTable6,
        member=SetSegment6,
        scoped=scoped,
    )


def table_text(ops: Sequence[Segment6Operation]) -> str:
    return nfttable.script(ops)
