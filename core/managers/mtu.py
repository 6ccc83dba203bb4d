"""A network's MTU: read by the managers, the host's desired state and the lean listing,
so it lives apart from all three (the host path then never loads the console's views)."""

from __future__ import annotations

from typing import Any

# Bytes a segment's encapsulation takes from the physical MTU.
SEGMENT_OVERHEAD = {"vxlan": 50, "vlan": 0, None: 0}


def effective_mtu(network: Any, physical_mtu: int) -> int:
    """A network's MTU: its own, or the physical MTU less its segment's overhead."""
    return own_or_physical_mtu(network.mtu, network.segmentation, physical_mtu)


def own_or_physical_mtu(own: int | None, segmentation: str | None, physical_mtu: int) -> int:
    if own is not None:
        return int(own)
    return physical_mtu - SEGMENT_OVERHEAD.get(segmentation, 0)
