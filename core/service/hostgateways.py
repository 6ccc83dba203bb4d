"""The addresses hosts serve multi-host networks from (nova-network's fixed_ips.host).

Every host with instances of a multi-host network routes them and answers their DHCP
from an address of its own in the network, taken from the free ones (and reserved) when
its first instance arrives. The address stays the host's, as nova-network kept it: a
host that loses its last instance there stops serving (its agent takes the address
down) and gets the same address back with its next instance, and no instance is ever
handed an address that a host whose agent has not caught up may still hold.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select, update

from core.managers.registry import MANAGERS
from core.store.schema import fixed_ips


def reserve_for(connection: Connection, network: Row[Any], host: str) -> None:
    """Make sure ``host`` has its address on the multi-host ``network``."""
    have = connection.execute(
        select(fixed_ips.c.id).where(fixed_ips.c.network_id == network.id, fixed_ips.c.host == host)
    ).first()
    if have is not None:
        return
    address = MANAGERS[network.manager].take_host_address(connection, network)
    connection.execute(
        update(fixed_ips).where(fixed_ips.c.id == address).values(host=host, reserved=True)
    )
