"""What a dual-stack network's dnsmasq adds for IPv6: router adverts, DHCPv6, names.

dnsmasq already serves the network's DHCP and DNS, and it sends router adverts
(``--enable-ra``) from the same process, configured by the same ``--dhcp-range``: one
daemon per bridge keeps one thing to start, watch and reload, where radvd would be a
second. The advert carries the /64 with the flags of the network's mode, the network's
MTU, the gateway as DNS server (RDNSS) and the DHCP domain (DNSSL), so a SLAAC guest
gets its DNS from the advert alone:

* ``slaac``: ``ra-only``: the prefix is autonomous and no DHCPv6 is offered;
* ``dhcpv6-stateless``: ``ra-stateless``: the address by SLAAC, DNS also by DHCPv6
  (the advert's other-configuration flag);
* ``dhcpv6-stateful``: a ``static`` range: the advert's managed flag, and DHCPv6 hands
  each instance exactly the address the database holds (``[ADDRESS]`` in its line of
  the hosts file), nothing to unknown clients.

A DHCPv6 lease binds its address to the client's DUID, and dnsmasq gives no address
that another client's lease holds: a relaunched instance, whose address is the one the
old instance had (the same IPv4 offset) behind a new MAC, and whose guest comes with a
new DUID, would get none until the old lease ran out. So the lease script writes each
DHCPv6 lease down (``BRIDGE.leases6``: address, client DUID, IAID, server DUID, MAC), and
the apply releases (``dhcp_release6``, on the client's behalf) every lease whose address
no instance holds any more or holds behind another MAC.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from core.linux import namespace
from core.linux.desired import DesiredNetwork, Dhcp
from core.linux.ipv6_host import NetworkV6

# Seconds between unsolicited adverts (dnsmasq answers a solicitation at once).
RA_INTERVAL = 60
_RANGE_MODE = {"slaac": "ra-only", "dhcpv6-stateless": "ra-stateless", "dhcpv6-stateful": "static"}


def argv(network: DesiredNetwork) -> tuple[str, ...]:
    """The arguments a dual-stack network's dnsmasq takes besides its IPv4 ones."""
    v6, dhcp = network.ipv6, network.dhcp
    if v6 is None or dhcp is None:
        return ()
    subnet = ipaddress.IPv6Network(v6.cidr)
    mtu = f"mtu:{dhcp.mtu}," if dhcp.mtu is not None else ""
    return (
        "--enable-ra",
        f"--dhcp-range=set:net{network.id},{subnet.network_address},{_RANGE_MODE[v6.mode]},"
        f"{subnet.prefixlen},{dhcp.lease_time}s",
        f"--ra-param={network.bridge},{mtu}{RA_INTERVAL}",
        # Its reverse zone is answered here (or NXDOMAIN), never asked upstream.
        f"--local=/{reverse_zone(v6.cidr)}/",
    )


def reverse_zone(cidr: str) -> str:
    """The ip6.arpa domain of a /64 (or any prefix on a nibble boundary)."""
    subnet = ipaddress.IPv6Network(cidr)
    nibbles = subnet.network_address.exploded.replace(":", "")[: subnet.prefixlen // 4]
    return ".".join(reversed(nibbles)) + ".ip6.arpa"


def options(network: DesiredNetwork) -> list[str]:
    """DHCPv6 options, which the adverts carry too: the gateway as DNS server, the domain."""
    v6, dhcp = network.ipv6, network.dhcp
    if v6 is None or dhcp is None:
        return []
    tag = f"tag:net{network.id}"
    return [
        f"{tag},option6:dns-server,[{v6.gateway}]",
        f"{tag},option6:domain-search,{dhcp.domain}",
    ]


def hosts_file(v6: NetworkV6 | None, dhcp: Dhcp) -> str:
    """The hosts file with each instance's IPv6 address where DHCPv6 hands it out."""
    if v6 is None or v6.mode != "dhcpv6-stateful":
        return dhcp.hosts_file
    suffix = f".{dhcp.domain},"
    return "".join(
        f"{h.mac},{h.hostname}{suffix}{h.address}"
        + (f",[{h.address_v6}]" if h.address_v6 else "")
        + "\n"
        for h in dhcp.hosts
    )


def names_file(v6: NetworkV6 | None, dhcp: Dhcp) -> str:
    """The names file with an AAAA (and its PTR) beside each instance's A."""
    if v6 is None:
        return dhcp.names_file
    named = dhcp.hosts if dhcp.names is None else dhcp.names
    six = "".join(
        f"{h.address_v6} {h.hostname}.{dhcp.domain} {h.hostname}\n" for h in named if h.address_v6
    )
    return dhcp.names_file + six


@dataclass(frozen=True)
class Lease6:
    """One DHCPv6 lease dnsmasq gave, as its lease script wrote it down."""

    address: str
    client_id: str  # the client's DUID, colon-separated hex
    iaid: str
    server_id: str  # dnsmasq's own DUID
    mac: str | None  # the client's, when dnsmasq knew it

    def line(self) -> str:
        return f"{self.address} {self.client_id} {self.iaid} {self.server_id} {self.mac or '-'}"


def parse_leases(text: str | None) -> tuple[Lease6, ...]:
    found = []
    for line in (text or "").splitlines():
        fields = line.split()
        # A temporary address (IAID prefixed T) is never given here; a torn line is skipped.
        if len(fields) != 5 or not fields[2].isdigit():
            continue
        address, client_id, iaid, server_id, mac = fields
        found.append(Lease6(address, client_id, iaid, server_id, None if mac == "-" else mac))
    return tuple(found)


def stale_leases(network: DesiredNetwork, leases: Sequence[Lease6]) -> tuple[Lease6, ...]:
    """The leases of ``network``'s dnsmasq whose address no instance holds now, or holds
    behind another MAC (a relaunched instance's)."""
    if not leases:
        return ()
    owners: dict[str, str] = {}
    if network.dhcp is not None and network.ipv6 is not None:
        owners = {
            str(ipaddress.IPv6Address(h.address_v6)): h.mac.lower()
            for h in network.dhcp.hosts
            if h.address_v6
        }
    stale = []
    for lease in leases:
        owner = owners.get(str(ipaddress.IPv6Address(lease.address)))
        if owner is None or (lease.mac is not None and lease.mac.lower() != owner):
            stale.append(lease)
    return tuple(stale)


# dhcp_release6 exits with the DHCPv6 status of dnsmasq's reply: NoBinding says the lease
# is gone already (run out, or released by its client), which is what was wanted.
_NO_BINDING = 3


def release_leases(
    netns: str | None, program: str, bridge: str, leases: Sequence[Lease6]
) -> list[str]:
    """Send dnsmasq a DHCPv6 release on each client's behalf (dhcp_release6 waits for the
    reply), so its address is free for its new owner at once; why each that failed did."""
    failures = []
    for lease in leases:
        result = namespace.run(
            netns,
            [
                program,
                "--iface", bridge,
                "--ip", lease.address,
                "--client-id", lease.client_id,
                "--server-id", lease.server_id,
                "--iaid", lease.iaid,
            ],
        )
        if result.returncode not in (0, _NO_BINDING):
            message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
            failures.append(f"dhcp_release6 {lease.address} on {bridge}: {message}")
    return failures


def without(text: str | None, released: Sequence[Lease6]) -> str:
    """The lease file's text without ``released`` (dnsmasq's own ``del`` for them may
    come after the next plan has read the file)."""
    gone = {(lease.address, lease.client_id) for lease in released}
    kept = [lease for lease in parse_leases(text) if (lease.address, lease.client_id) not in gone]
    return "".join(lease.line() + "\n" for lease in kept)
