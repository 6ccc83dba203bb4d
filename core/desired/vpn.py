"""The project VPN servers a host should run, read from the database: every VLAN network
with a project, ``vpn_enabled`` and this host as its network host."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Row, Select, select

from core.config import Settings
from core.linux.vpn.spec import VpnSpec, vpn_spec
from core.managers.capabilities import kinds
from core.store.schema import networks, projects


def vpn_networks() -> Select[Any]:
    """VLAN networks with what a VPN needs of their project (name, identity)."""
    return (
        select(
            networks,
            projects.c.name.label("project_name"),
            projects.c.created_at.label("project_created_at"),
        )
        .outerjoin(projects, networks.c.project_id == projects.c.id)
        .where(networks.c.manager.in_(kinds(runs_vpn=True)))
    )


def spec_for(network: Row[Any], settings: Settings) -> VpnSpec:
    """The server of a VLAN network's project as the host of ``settings`` runs it (at its
    own vpn_ip: the address follows the network from host to host); ``network`` is a
    row of vpn_networks()."""
    assert network.project_name is not None and network.vlan is not None
    return vpn_spec(
        project=network.project_name,
        network_id=network.id,
        cidr=network.cidr,
        bridge=network.bridge,
        segment=network.vlan,
        public_address=settings.vpn_ip,
        public_port=network.vpn_public_port,
        private_address=network.vpn_private_address,
        gateway=network.gateway,
        netmask=network.netmask,
        clients=settings.cnt_vpn_clients,
        owner=project_identity(network),
    )


def project_identity(network: Row[Any]) -> str:
    """Tells a project from an earlier one of the same name (its VPN keys are not ours)."""
    return f"{network.project_id}/{network.project_created_at.isoformat()}"


def desired_specs(
    connection: Connection, settings: Settings, only: Collection[str] | None = None
) -> list[VpnSpec]:
    """The servers this host should run (of the projects ``only`` names, when given)."""
    query = vpn_networks().where(
        networks.c.project_id.is_not(None),
        networks.c.vpn_enabled.is_(True),
        networks.c.host == settings.host,
    )
    if only is not None:
        query = query.where(projects.c.name.in_(sorted(only)))
    rows = connection.execute(query.order_by(networks.c.vlan))
    return [spec_for(network, settings) for network in rows]
