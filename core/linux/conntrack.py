"""Forget the connections a floating IP's old NAT mapping set up.

A NAT rule applies to a connection's first packet; the kernel's connection tracking then
carries the mapping for the connection's life. Removing a floating IP's DNAT element
therefore leaves established connections flowing to the old instance until someone
deletes their conntrack entries: nova-network ran ``conntrack -D``; this asks the kernel
over netlink (pyroute2), in the namespace the caller is in.
"""

from __future__ import annotations

from collections.abc import Iterable


def forget(addresses: Iterable[str]) -> int:
    """Delete every tracked connection to or from the floating ``addresses`` (inbound:
    sent to the address; outbound: answered to it after SNAT). Returns how many."""
    wanted = sorted(set(addresses))
    if not wanted:
        return 0
    from pyroute2.conntrack import Conntrack, NFCTAttrTuple
    from pyroute2.netlink.exceptions import NetlinkError

    deleted = 0
    conntrack = Conntrack()
    try:
        for address in wanted:
            entries = list(conntrack.dump_entries(tuple_orig=NFCTAttrTuple(daddr=address)))
            entries += conntrack.dump_entries(tuple_reply=NFCTAttrTuple(daddr=address))
            for entry in entries:
                try:
                    conntrack.delete(entry)
                    deleted += 1
                except (OSError, NetlinkError):
                    # Gone already: it timed out, or it was found both ways (a guest
                    # calling its own floating IP is sent to and answered from it).
                    pass
    finally:
        conntrack.close()
    return deleted
