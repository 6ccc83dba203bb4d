"""VLAN: a network (VLAN, bridge, subnet, dnsmasq) per project, taken on its first launch."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NoMoreNetworks
from core.managers.base import NetworkManager
from core.store.models import Network, Project


class VlanManager(NetworkManager):
    kind = "vlan"
    # network, gateway and the project's VPN address.
    reserved_bottom = 3
    min_network_size = 8
    has_vpn = True
    # Above this the segment is a VXLAN VNI, not an 802.1Q id.
    max_vlan_id: ClassVar[int] = 4094

    def top_reserved(self, cnt_vpn_clients: int) -> int:
        return self.reserved_top + cnt_vpn_clients

    def networks_for(self, session: Session, project: Project) -> list[Network]:
        own = session.scalars(select(Network).where(Network.project_id == project.id)).first()
        if own is not None:
            return [own]
        # First launch of the project: take the lowest free VLAN network. The caller
        # holds the project's row lock, so two first launches cannot take two networks.
        free = session.scalars(
            select(Network)
            .where(Network.manager == self.kind, Network.project_id.is_(None))
            .order_by(Network.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if free is None:
            raise NoMoreNetworks(project.name)
        free.project_id = project.id
        return [free]
