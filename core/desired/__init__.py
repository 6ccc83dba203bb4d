"""The desired state of a host, read from the database and handed to the host layer.

The host layer (core/linux) never reads the database: whoever applies (HostSync) reads
here, in one transaction, what the host must have, and hands it over as a Wanted.
"""

from __future__ import annotations

from sqlalchemy import Connection

from core.config import Settings
from core.desired.host import ScopeUnknown, desired_from_connection
from core.desired.metadata import wanted_routes
from core.desired.vpn import desired_specs
from core.linux.scope import Scope
from core.linux.vpn.spec import VpnSpec
from core.linux.wanted import Wanted, WholeHostNeeded
from core.store.db import Database

__all__ = ["read_wanted", "wanted_from_connection"]


def read_wanted(db: Database, settings: Settings, scope: Scope | None = None) -> Wanted:
    """What this host must have (of ``scope`` only, when given), in one transaction."""
    with db.read() as connection:
        return wanted_from_connection(connection, settings, scope)


def wanted_from_connection(
    connection: Connection, settings: Settings, scope: Scope | None = None
) -> Wanted:
    """Raises WholeHostNeeded when a scoped network is gone: only a whole comparison
    finds its links."""
    if scope is None:
        return Wanted(
            host=desired_from_connection(connection, settings),
            vpns=tuple(desired_specs(connection, settings)),
            routes=wanted_routes(connection, settings),
        )
    if scope.vpns_only:
        # A change to VPNs alone (`vpn run`) touches nothing else of its network.
        return Wanted(
            host=None,
            vpns=tuple(desired_specs(connection, settings, scope.vpns)),
            vpn_projects=scope.vpns,
        )
    try:
        host = desired_from_connection(connection, settings, scope)
    except ScopeUnknown:
        raise WholeHostNeeded from None
    assert host.reach is not None
    projects = host.reach.projects
    if projects is not None:
        projects = projects | scope.vpns
    specs: tuple[VpnSpec, ...] = ()
    if projects is None or projects:
        specs = tuple(
            spec
            for spec in desired_specs(connection, settings)
            if projects is None or spec.project in projects
        )
    return Wanted(
        host=host,
        vpns=specs,
        vpn_projects=projects,
        # Which networks this host serves changes only with a network.
        routes=wanted_routes(connection, settings) if scope.network_ids else None,
    )
