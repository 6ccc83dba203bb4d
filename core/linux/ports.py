"""How an instance's port on a bridge is named.

The compute side plugs each of an instance's interfaces into its network's bridge as a
tap (or veth) named ``tap`` + the interface's MAC address without colons, e.g.
``tapfa163e0a1b2c`` (15 characters, the most Linux allows). The MAC is unique in the
database and known to both sides at launch, so the name needs no column and no lookup:
the network host filters a port by that name before it even appears.
"""

from __future__ import annotations


def port_name(mac: str) -> str:
    return "tap" + mac.lower().replace(":", "")
