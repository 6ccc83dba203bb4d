"""What the host has now: the kernel's links and addresses, netcon's nftables table,
its dnsmasq processes and files, and IPv4 forwarding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import HostError
from core.linux import dnsmasq, secgroups
from core.linux.netlink import Address, Link, Netlink
from core.linux.nft import Nft, NftState
from core.linux.secgroup_nft import FilterState
from core.linux.sysctl import read_forwarding

# Links carry this alias once netcon has created them; nothing else is ever deleted.
OWNER_ALIAS = "netcon"
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
) -> ObservedHost:
    link_list, address_list = netlink.state()
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
    bridges = dnsmasq.known_bridges(dhcp_dir)
    states = {b: dnsmasq.observe(dnsmasq.DhcpFiles(dhcp_dir, b)) for b in bridges}
    security = None
    if security_dir is not None:
        security = secgroups.observe(
            nft.binary, netns, security_dir, needed=security_needed, may_change=may_change
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
    )
