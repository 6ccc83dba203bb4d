"""fe80::a9fe:a9fe on the bridges: how a guest reaches the server over IPv6.

A guest reaches fe80::a9fe:a9fe only if something on its link answers neighbour
solicitations for it, so each bridge of a dual-stack network this host serves carries
the address, but deprecated (preferred lifetime 0, valid forever): the kernel answers for
it and accepts connections to it, yet avoids it as the source of anything of its own,
and dnsmasq sends its router adverts from the bridge's link-local address with the
longest preferred lifetime, which is the kernel's own (EUI-64) one. One moment remains:
while that address is still tentative (the bridge just got its first port), the kernel
has no other link-local source for an advert than the metadata one; the IPv6 DNAT
table's output chain drops any router advert from fe80::a9fe:a9fe (spec.IPV6), and the
next advert comes from the bridge's own. Guests so keep exactly one default router;
without the rule, guests that came up with the bridge had two.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Sequence

from core.errors import HostError
from core.linux import namespace
from core.linux.metadata.operations import MetadataAddress6
from core.linux.metadata.spec import ADDRESS6, PREFIXLEN6
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

# Valid forever (the kernel's INFINITY_LIFE_TIME), preferred never.
_FOREVER = 0xFFFFFFFF
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_IFADDR = struct.Struct("=BBBBI")


def carrying(netns: str | None) -> frozenset[str]:
    """The links of ``netns`` that have fe80::a9fe:a9fe (from /proc/net/if_inet6)."""
    wanted = ipaddress.IPv6Address(ADDRESS6).packed.hex()
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


def _request(index: int, add: bool) -> Request:
    packed = socket.inet_pton(socket.AF_INET6, ADDRESS6)
    # RT_SCOPE_LINK (253); no address detection: the host answers for it at once.
    body = _IFADDR.pack(socket.AF_INET6, PREFIXLEN6, IFA_F_NODAD, 253, index)
    body += _attr(IFA_ADDRESS, packed)
    if not add:
        return Request(RTM_DELADDR, _NLM_F_REQUEST | _NLM_F_ACK, body)
    # struct ifa_cacheinfo: preferred 0, valid forever (the kernel fills in the rest).
    body += _attr(IFA_CACHEINFO, struct.pack("=IIII", 0, _FOREVER, 0, 0))
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    return Request(RTM_NEWADDR, flags, body)


def apply(changes: Sequence[MetadataAddress6], link: Netlink) -> None:
    """The address's additions and removals, in one netlink batch."""
    if not changes:
        return
    indexes = link.indexes({op.bridge for op in changes})
    # A bridge deleted by this apply took its address with it.
    present = [op for op in changes if op.bridge in indexes]
    requests = [_request(indexes[op.bridge], op.add) for op in present]
    for op, errno in zip(present, link.run(requests), strict=True):
        # Already there (EEXIST) or already gone (EADDRNOTAVAIL): as wanted.
        if errno not in (0, 17, 99):
            raise HostError(f"netlink: {op.describe()}: errno {errno}")
