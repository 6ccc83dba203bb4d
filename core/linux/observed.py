"""What the host has now: the kernel's links and addresses, netcon's nftables table,
its dnsmasq processes and files, and IPv4 forwarding."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import HostError
from core.linux import dnsmasq
from core.linux.desired import DesiredHost
from core.linux.netlink import OWNER_ALIAS, Address, Link, Netlink
from core.linux.nft import Nft, NftState
from core.linux.secgroups import observe as filter_observe
from core.linux.secgroups.state import FilterState
from core.linux.sysctl import (
    hearing_adverts,
    ipv6_disabled,
    read_forwarding,
    read_forwarding_v6,
)

if TYPE_CHECKING:
    from core.linux.nftelements import Lookup

# Floating addresses on a public interface carry this label.
FLOATING_LABEL = "netcon-fip"


@dataclass(frozen=True)
class ObservedHost:
    links: dict[str, Link]
    addresses: tuple[Address, ...]
    forwarding: bool
    # None: the nft binary is missing, so the table could not be read.
    nft: NftState | None
    dnsmasq: dict[str, dnsmasq.DnsmasqState] = field(default_factory=dict)
    # Links an interrupted apply created before it could mark them (see journal).
    journal: frozenset[str] = frozenset()
    # Without CAP_NET_ADMIN the table cannot be read: a plan then leaves NAT out.
    nft_unreadable: bool = False
    # The security-group tables (None: nft is missing, or they were not asked for).
    security: FilterState | None = None
    # IPv6 forwarding (net.ipv6.conf.all.forwarding).
    forwarding_v6: bool = False
    # Bridges with IPv6 switched off ("default" too: what a new bridge will have).
    ipv6_off: frozenset[str] = frozenset()
    # Bridges that would take an address from router adverts ("default" too).
    hearing_adverts: frozenset[str] = frozenset()
    # The nftables ruleset generation, read before anything else was (None: not read,
    # in a scoped observation, or unreadable): see secgroups/record.py.
    generation: int | None = None

    def by_index(self) -> dict[int, Link]:
        return {link.index: link for link in self.links.values()}

    def owns(self, link: Link) -> bool:
        return link.alias == OWNER_ALIAS or link.name in self.journal


def observe(
    netlink: Netlink,
    nft: Nft,
    dhcp_dir: Path,
    journal: Path,
    netns: str | None,
    *,
    nat_marker: Path,
    nat_needed: bool = True,
    may_change: bool = True,
    security_dir: Path | None = None,
    security_needed: bool = True,
    lookup: Callable[[], Lookup] | None = None,
) -> ObservedHost:
    generation = None
    if lookup is not None and security_dir is not None:
        # First: a change made while the rest is read then tells on the next apply.
        with contextlib.suppress(HostError):
            generation = lookup().generation()
    link_list, address_list = netlink.state(fresh=True)
    links = {link.name: link for link in link_list}
    addresses = tuple(address_list)
    nft_state: NftState | None
    unreadable = False
    if not dnsmasq.find_binary(nft.binary):
        nft_state = None
    elif nat_needed or nat_marker.exists():
        try:
            nft_state = nft.observe()
        except HostError:
            if may_change:
                raise
            nft_state, unreadable = None, True
    else:
        # netcon never made its table here and needs none: no need to run nft to see.
        nft_state = NftState()
    states = dnsmasq.observe(dhcp_dir, netns)
    security = None
    if security_dir is not None:
        security = filter_observe.observe(
            nft.binary,
            netns,
            security_dir,
            needed=security_needed,
            may_change=may_change,
            lookup=lookup,
            generation=generation,
        )
    pending: frozenset[str] = frozenset()
    if journal.is_file():
        pending = frozenset(journal.read_text().split())
    return ObservedHost(
        links=links,
        addresses=addresses,
        forwarding=read_forwarding(netns),
        nft=nft_state,
        dnsmasq=states,
        journal=pending,
        nft_unreadable=unreadable,
        security=security,
        forwarding_v6=read_forwarding_v6(netns),
        ipv6_off=ipv6_disabled(
            netns, ["default", *(name for name, k in links.items() if k.kind == "bridge")]
        ),
        hearing_adverts=hearing_adverts(
            netns, ["default", *(name for name, k in links.items() if k.kind == "bridge")]
        ),
        generation=generation,
    )


def observe_scoped(
    netlink: Netlink,
    lookup: Callable[[], Lookup],
    nft_binary: str,
    dhcp_dir: Path,
    journal: Path,
    netns: str | None,
    desired: DesiredHost,
    *,
    nat_marker: Path,
    security_dir: Path,
    may_change: bool = True,
    trusted_ports: tuple[str, ...] = (),
) -> ObservedHost | None:
    """What the host has of the objects a scoped desired state covers, asked for by name
    and key; None when only a full look will do (netcon's table is not complete)."""
    reach = desired.reach
    assert reach is not None
    if not dnsmasq.find_binary(nft_binary):
        return None  # the full comparison says so
    names = set(reach.links) | set(desired.public_interfaces)
    for net in desired.networks:
        if net.segment is not None:
            names.add(net.segment.parent)
        if net.bridge_interface is not None:
            names.add(net.bridge_interface)
        names.update(net.ports)
    link_list = netlink.links_named(names)
    gateways = {n.gateway for n in desired.networks if n.gateway is not None}
    gateways |= {n.ipv6.gateway for n in desired.networks if n.ipv6 is not None and n.gateway}
    ours = {link.index for link in link_list if link.name in reach.links}
    address_list = netlink.addresses_matching(ours, gateways | set(reach.floating))
    # Where an address already sits decides whether it may be taken: name those links.
    known = {link.index for link in link_list}
    homes = {a.index for a in address_list} - known
    if homes:
        link_list += netlink.links_named((), homes)
    nft_state: NftState | None
    if nat_marker.exists():
        fixed = {pair.fixed for pair in desired.floating}
        from core.linux.nftelements import scoped_state

        nft_state = scoped_state(
            lookup(),
            interfaces=desired.public_interfaces,
            bridges=reach.bridges,
            cidrs=reach.cidrs,
            floating=reach.floating,
            fixed=fixed,
        )
        if nft_state is None:
            return None
    elif desired.snat_ranges or desired.floating or desired.isolated_bridges:
        return None  # the table is still to be made: a full apply makes it
    else:
        nft_state = NftState()
    security: FilterState | None = None
    if desired.security is not None and desired.security.keyed:
        security = _observe_keyed(lookup(), nft_binary, netns, desired, trusted_ports)
        if security is None:
            return None  # the tables are not whole: the full comparison mends them
    elif desired.security is not None:
        security = filter_observe.observe(
            nft_binary,
            netns,
            security_dir,
            needed=bool(desired.security.ports) or any(n.owns_bridge for n in desired.networks),
            may_change=may_change,
        )
    pending: frozenset[str] = frozenset()
    if journal.is_file():
        pending = frozenset(journal.read_text().split())
    return ObservedHost(
        links={link.name: link for link in link_list},
        addresses=tuple(address_list),
        forwarding=read_forwarding(netns),
        nft=nft_state,
        dnsmasq=dnsmasq.observe(
            dhcp_dir, netns, reach.bridges, [n.bridge for n in desired.networks if n.dhcp]
        ),
        journal=pending,
        security=security,
        forwarding_v6=read_forwarding_v6(netns),
        ipv6_off=ipv6_disabled(
            netns, ["default", *(link.name for link in link_list if link.kind == "bridge")]
        ),
        hearing_adverts=hearing_adverts(
            netns, ["default", *(link.name for link in link_list if link.kind == "bridge")]
        ),
    )


def _observe_keyed(
    lookup: Lookup,
    nft_binary: str,
    netns: str | None,
    desired: DesiredHost,
    trusted: tuple[str, ...],
) -> FilterState | None:
    """The filter at the keys a change names, and the open ports a scoped plan compares."""
    from core.linux import ownports
    from core.linux.secgroups.keyed import KeyedFilter, observe_keyed

    assert isinstance(desired.security, KeyedFilter) and desired.reach is not None
    own = ownports.own_ports(desired) | ownports.scoped_own(desired.reach.links)
    return observe_keyed(
        lookup,
        nft_binary,
        netns,
        desired.security,
        {"own_ports": own, "trusted_ports": frozenset(trusted)},
    )
