"""What a guest reaches of the network host itself: only what netcon serves it there.

Without a filter, a guest reaches any service listening on the host at its gateway
address (the host's sshd, a database). ``inet netcon_hostinput`` fails closed: traffic
that comes in from a bridge netcon owns (a FlatDHCP or VLAN/VXLAN network's, listed in
its set) and is addressed to the host gets DHCP and DHCPv6, DNS (to the network's
dnsmasq), ICMP echo and the ICMPv6 that neighbour discovery and router solicitation
need, the connections the metadata table DNATed to its server, and the replies to what
the host started; nothing else, and only at an address of the bridge it came in on
(or that link's broadcast and multicast): a guest of one network does not reach
another network's dnsmasq at that network's gateway. Forwarded traffic (guest to
guest, to the outside, floating IPs) never passes the input hook, so it is not touched.

A Flat network's bridge is the admin's and may carry the host's own uplink: it is not
in the set. Neither is a bridge of a network held back (its element stays as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from core.linux import nfttable
from core.linux.desired import DesiredNetwork
from core.linux.nfttable import Chain, NftTable, ObservedNames
from core.linux.operations import Operation, Phase

if TYPE_CHECKING:
    from core.linux.execution import Execution
    from core.linux.nftelements import Lookup

SET = "bridges"
# The address types a guest's packet to the host may have, as the bridge it came in
# on sees them (nft's `fib daddr . iif type`).
OWN_LINK = ("local", "broadcast", "multicast")
# What a guest may send to the host; the chain drops the rest from the set's bridges.
SERVED = (
    "ct state established,related accept",
    # Only at an address of the bridge the packet came in on (or its broadcast and
    # multicast, which DHCP and neighbour discovery use): a guest does not reach
    # another network's dnsmasq at that network's gateway, nor anything the host
    # serves at its other addresses. The metadata DNAT (prerouting) has already made
    # the destination this bridge's own gateway; replies to what the host started
    # were let through above, whatever address the host sent them from.
    f"fib daddr . iif type != {{ {', '.join(OWN_LINK)} }} drop",
    # The metadata table's DNAT to its server (its own guard lets only these through).
    "ct status dnat accept",
    # DHCP, DHCPv6 and DNS to the network's dnsmasq.
    "udp dport { 53, 67, 547 } accept",
    "tcp dport 53 accept",
    "icmp type echo-request accept",
    "icmpv6 type { echo-request, nd-router-solicit, nd-neighbor-solicit, "
    "nd-neighbor-advert } accept",
)

HOST_INPUT_TABLE = NftTable(
    "inet",
    "netcon_hostinput",
    "hostinput-table",
    sets=(("set", SET, "ifname"),),
    chains=(
        Chain(
            "input",
            "type filter hook input priority -5; policy accept;",
            (f"iifname != @{SET} accept", *SERVED, "drop"),
        ),
    ),
)
FAMILY = HOST_INPUT_TABLE.family
TABLE = HOST_INPUT_TABLE.name


def guarded_bridges(networks: Sequence[DesiredNetwork]) -> frozenset[str]:
    """The bridges netcon makes here (never a Flat network's, which is the admin's)."""
    return frozenset(net.bridge for net in networks if net.owns_bridge)


def observe(
    nft_binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    wanted: bool,
    may_change: bool = True,
) -> ObservedNames:
    return nfttable.read_names(
        HOST_INPUT_TABLE, SET, nft_binary, netns, state_dir, wanted=wanted, may_change=may_change
    )


def observe_scoped(
    lookup: Callable[[], Lookup],
    nft_binary: str,
    netns: str | None,
    state_dir: Path,
    bridges: frozenset[str],
    *,
    may_change: bool = True,
) -> ObservedNames:
    """Which of ``bridges`` the set holds, asked by key (a scoped apply lists no table).
    A table netcon has not made yet, or one without its set, is read in full."""
    if not bridges:
        return ObservedNames()
    from core.linux.nftelements import FAMILIES, ifname_key

    family = FAMILIES[FAMILY]
    if HOST_INPUT_TABLE.marker(state_dir).exists():
        source = lookup()
        if source.sets_exist(TABLE, (SET,), family):
            names = sorted(bridges)
            found = source.get(TABLE, SET, [ifname_key(name) for name in names], family)
            held = frozenset(n for n, e in zip(names, found, strict=True) if e is not None)
            return ObservedNames(table=True, layout_ok=True, names=held)
    return observe(nft_binary, netns, state_dir, wanted=True, may_change=may_change)


@dataclass(frozen=True)
class HostInputOperation(Operation):
    """A change to the host input filter: one nft batch, before any daemon starts."""

    phase = Phase.HOST_INPUT
    table: ClassVar[NftTable] = HOST_INPUT_TABLE
    table_present: ClassVar[bool | None] = None

    def execute(self, run: Execution) -> None:
        run.host_input.append(self)

    def commands(self) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class CreateHostInputTable(HostInputOperation):
    replace: bool
    table_present = True

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return (
            f"{verb} nftables table {FAMILY} {TABLE} (guests reach only DHCP, DNS, ping "
            "and metadata on this host)"
        )

    def commands(self) -> list[str]:
        return HOST_INPUT_TABLE.create(self.replace)


@dataclass(frozen=True)
class DeleteHostInputTable(HostInputOperation):
    table_present = False

    def describe(self) -> str:
        return f"delete nftables table {FAMILY} {TABLE} (no bridge of netcon's here)"

    def commands(self) -> list[str]:
        return HOST_INPUT_TABLE.delete()


@dataclass(frozen=True)
class GuardBridge(HostInputOperation):
    bridge: str
    add: bool

    def describe(self) -> str:
        if self.add:
            return (
                f"let guests on {self.bridge} reach only DHCP, DNS, ping and metadata on this host"
            )
        return f"no host input filter for {self.bridge} any more"

    def commands(self) -> list[str]:
        return [HOST_INPUT_TABLE.element(self.add, SET, f'"{self.bridge}"')]


def plan(
    wanted: frozenset[str],
    have: ObservedNames,
    *,
    nft_found: bool,
    held: frozenset[str] = frozenset(),
    scoped: bool = False,
) -> list[Operation]:
    """What makes the set ``wanted`` (see ``nfttable.plan_names``; a held bridge's
    element stays as it is)."""
    return nfttable.plan_names(
        wanted,
        have,
        nft_found=nft_found,
        create=CreateHostInputTable,
        delete=DeleteHostInputTable,
        member=GuardBridge,
        held=held,
        scoped=scoped,
    )
