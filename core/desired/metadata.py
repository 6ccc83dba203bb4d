"""Where this host's metadata server answers: one route per network it serves."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, func, or_, select

from core.config import Settings
from core.desired.served import own_gateway
from core.linux.metadata.spec import Route
from core.managers.capabilities import kinds
from core.store.schema import networks


def wanted_routes(connection: Connection, settings: Settings) -> tuple[Route, ...]:
    """One route per FlatDHCP and VLAN network this host serves (it has their gateway;
    its own one on a multi-host network with instances here)."""
    own = own_gateway()
    rows = connection.execute(
        select(networks.c.bridge, func.coalesce(own, networks.c.gateway))
        .where(
            or_(networks.c.host == bindparam("host"), own.is_not(None)),
            networks.c.manager.in_(kinds(serves_dhcp=True)),
            networks.c.gateway.is_not(None),
        )
        .order_by(networks.c.bridge),
        {"host": settings.host},
    )
    return tuple(Route(bridge, gateway) for bridge, gateway in rows)
