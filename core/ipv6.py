"""IPv6 beside IPv4: ranges split into one /64 per network, and an instance's address.

As nova-network from Cactus on, every network may have a /64 beside its IPv4 subnet. An
instance's IPv6 address is known when it launches, without a scan or a second
allocation:

* ``slaac`` and ``dhcpv6-stateless``: the guest forms its address from the advertised
  prefix and its MAC (modified EUI-64, RFC 4291 appendix A), so the database holds the
  same one, computed from the MAC (nova-network's ``ipv6_backend = rfc2462``);
* ``dhcpv6-stateful``: DHCPv6 hands out the prefix followed by the offset of the
  instance's IPv4 address in its subnet (10.0.0.5 in 10.0.0.0/24 is ``PREFIX::5``).
  The IPv4 address is already allocated race-free and is unique in its network, so the
  IPv6 one is too, and costs the same whether the /64 holds 40 instances or 4,000.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from core.errors import InvalidInput
from core.validate import shown

MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
DEFAULT_MODE = "slaac"
# Every network's IPv6 subnet: what SLAAC needs, and what nova-network and Neutron use.
PREFIX = 64

_SPECIAL = (
    (ipaddress.IPv6Network("fe80::/10"), "link-local"),
    (ipaddress.IPv6Network("ff00::/8"), "multicast"),
    (ipaddress.IPv6Network("::1/128"), "loopback"),
    (ipaddress.IPv6Network("::/128"), "unspecified"),
    (ipaddress.IPv6Network("::ffff:0:0/96"), "IPv4-mapped"),
)


def mode(field: str, value: object) -> str:
    if value not in MODES:
        raise InvalidInput(field, f"{shown(value)} must be one of {', '.join(MODES)}")
    return str(value)


def ipv6_range(field: str, value: object) -> ipaddress.IPv6Network:
    """An IPv6 range that networks' /64s can be cut from."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {type(value).__name__}")
    text = value
    if "/" not in text:
        raise InvalidInput(field, f"{shown(text)} must be an IPv6 CIDR like fd00:0:0:10::/60")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(field, f"{shown(text)} is not a valid CIDR") from None
    if not isinstance(network, ipaddress.IPv6Network):
        raise InvalidInput(field, f"{text} is IPv4; an IPv6 range is expected here")
    if network.network_address != ipaddress.IPv6Address(text.split("/")[0]):
        raise InvalidInput(field, f"{text} has host bits set; did you mean {network}?")
    for special, what in _SPECIAL:
        if network.subnet_of(special):
            raise InvalidInput(field, f"{network} is {what} ({special}); it cannot be routed")
    for special, what in _SPECIAL:
        if network.overlaps(special):
            raise InvalidInput(
                field, f"{network} takes in the {what} range {special}, which cannot be routed"
            )
    if network.prefixlen > PREFIX:
        raise InvalidInput(
            field, f"{network} is smaller than a /{PREFIX}; each network needs a whole /{PREFIX}"
        )
    return network


def subnets(
    field: str,
    whole: ipaddress.IPv6Network,
    count: int,
    taken: Iterable[ipaddress.IPv6Network],
) -> list[ipaddress.IPv6Network]:
    """The first ``count`` /64s of ``whole`` that no network has yet; an overlap with a
    network's range that is not one of ours (a /64 taken whole) is refused."""
    used = set()
    for other in taken:
        if other.overlaps(whole):
            # A network's /64 inside a wider range is stepped over; the very same /64, or
            # a range that is part of a network's, is another network's range.
            if other.prefixlen < PREFIX or not other.subnet_of(whole) or other == whole:
                raise InvalidInput(field, f"{whole} overlaps {other}, another network's range")
            used.add(other)
    capacity = 2 ** (PREFIX - whole.prefixlen)
    if count > capacity - len(used):
        raise InvalidInput(
            field,
            f"{count} networks need {count} /{PREFIX}s; {whole} has "
            f"{capacity - len(used)} free of {capacity}",
        )
    found: list[ipaddress.IPv6Network] = []
    for subnet in whole.subnets(new_prefix=PREFIX):
        if subnet not in used:
            found.append(subnet)
            if len(found) == count:
                break
    return found


def gateway(subnet: ipaddress.IPv6Network) -> ipaddress.IPv6Address:
    return subnet.network_address + 1


def eui64(subnet: ipaddress.IPv6Network, mac: str) -> ipaddress.IPv6Address:
    """The address SLAAC forms from ``mac`` in ``subnet`` (modified EUI-64)."""
    octets = bytes.fromhex(mac.replace(":", ""))
    interface = bytes([octets[0] ^ 0x02, *octets[1:3], 0xFF, 0xFE, *octets[3:6]])
    return subnet.network_address + int.from_bytes(interface, "big")


def instance_address(
    subnet: ipaddress.IPv6Network, address_mode: str, mac: str, offset: int
) -> ipaddress.IPv6Address:
    """The IPv6 address of the instance with ``mac`` whose IPv4 address is ``offset``
    into its subnet (see the module's docstring)."""
    if address_mode == "dhcpv6-stateful":
        return subnet.network_address + offset
    return eui64(subnet, mac)
