"""The queries every reader of a host's desired state shares: which networks a host
serves instances of, and the address it serves a multi-host network from."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, case, select

from core.store.schema import fixed_ips, instances, networks


@functools.cache
def served_here() -> Select[Any]:
    """The networks that have instances on the host named ``host``."""
    return (
        select(fixed_ips.c.network_id)
        .join(instances, fixed_ips.c.instance_id == instances.c.id)
        .where(instances.c.host == bindparam("host"))
    )


@functools.cache
def own_gateway() -> ColumnElement[Any]:
    """The address the host named ``host`` serves a multi-host network from: the one
    reserved for it, while it has instances there (NULL otherwise, and for the other
    networks). A column of a query over ``networks``."""
    # Correlated with networks alone: the query it is a column of may read fixed_ips too.
    reserved = (
        select(fixed_ips.c.address)
        .where(fixed_ips.c.network_id == networks.c.id, fixed_ips.c.host == bindparam("host"))
        .correlate(networks)
        .limit(1)
        .scalar_subquery()
    )
    here = networks.c.id.in_(served_here().correlate(None))
    return case((and_(networks.c.multi_host, here), reserved))
