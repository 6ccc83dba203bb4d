"""VLAN: a network (VLAN, bridge, subnet, dnsmasq) per project, taken on its first launch."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Row, select, update

from core import validate
from core.errors import Conflict, InvalidInput, NoMoreNetworks
from core.managers.base import NetworkManager, NetworkRequest, SubnetPlan
from core.managers.capabilities import VLAN
from core.store.schema import networks

if TYPE_CHECKING:
    from core.config import Settings

MAX_VXLAN_ID = 16_777_215
SEGMENTATIONS = ("vlan", "vxlan")


class VlanManager(NetworkManager):
    kind = "vlan"
    # network, gateway and the project's VPN address.
    reserved_bottom = 3
    min_network_size = 8
    capabilities = VLAN
    accepts_admin_bridge = False
    # Above this the segment is a VXLAN VNI, not an 802.1Q id.
    max_vlan_id: ClassVar[int] = 4094

    def top_reserved(self, cnt_vpn_clients: int) -> int:
        return self.reserved_top + cnt_vpn_clients

    def complete_request(self, request: NetworkRequest, settings: Settings) -> NetworkRequest:
        if request.bridge is not None:
            raise InvalidInput("bridge", "VLAN networks name their bridge br<vlan>; omit it")
        segmentation = (
            request.segmentation if request.segmentation is not None else settings.segmentation
        )
        if segmentation not in SEGMENTATIONS:
            raise InvalidInput("segmentation", f"{segmentation!r} must be vlan or vxlan")
        return replace(request, segmentation=segmentation)

    def subnet_plans(
        self,
        connection: Connection,
        request: NetworkRequest,
        subnets: list[ipaddress.IPv4Network],
        settings: Settings,
    ) -> list[SubnetPlan]:
        """As nova-network: segment ids count up from vlan_start, VPN ports from vpn_start,
        bridges are br<segment>, labels <label>_<n> when more than one is made."""
        assert request.segmentation is not None
        count = len(subnets)
        segments = self._segment_ids(connection, request, count, settings.vlan_start)
        ports = self._vpn_ports(connection, request.vpn_start, count, settings.vpn_start)
        plans = []
        for index, (subnet, segment, port) in enumerate(zip(subnets, segments, ports, strict=True)):
            if request.label is None:
                label = f"{self.kind}{segment}"
            else:
                label = request.label if count == 1 else f"{request.label}_{index}"
            plans.append(SubnetPlan(subnet, label, f"br{segment}", segment, port))
        return plans

    def _segment_ids(
        self, connection: Connection, request: NetworkRequest, count: int, default_start: int
    ) -> list[int]:
        ceiling = self.max_vlan_id if request.segmentation == "vlan" else MAX_VXLAN_ID
        used = set(
            connection.execute(select(networks.c.vlan).where(networks.c.vlan.is_not(None)))
            .scalars()
            .all()
        )
        if request.vlan_start is not None:
            first = validate.integer("vlan_start", request.vlan_start, 1, ceiling)
            wanted = list(range(first, first + count))
            if wanted[-1] > ceiling:
                raise InvalidInput(
                    "vlan_start", f"{count} networks from {first} pass the last id {ceiling}"
                )
            for vlan in wanted:
                if vlan in used:
                    holder = connection.execute(
                        select(networks.c.cidr).where(networks.c.vlan == vlan)
                    ).scalar_one()
                    raise Conflict("vlan_start", f"VLAN {vlan} is taken by network {holder}")
            return wanted
        # Not given: count up from the configured start, skipping ids already taken.
        free = (v for v in range(default_start, ceiling + 1) if v not in used)
        result = [v for _, v in zip(range(count), free, strict=False)]
        if len(result) < count:
            raise Conflict("vlan_start", f"only {len(result)} segment ids are left below {ceiling}")
        return result

    def _vpn_ports(
        self, connection: Connection, start: int | str | None, count: int, default_start: int
    ) -> list[int]:
        used = set(
            connection.execute(
                select(networks.c.vpn_public_port).where(networks.c.vpn_public_port.is_not(None))
            )
            .scalars()
            .all()
        )
        if start is not None:
            first = validate.port("vpn_start", start)
            wanted = list(range(first, first + count))
            if wanted[-1] > 65535:
                raise InvalidInput("vpn_start", f"{count} ports from {first} pass 65535")
            for port in wanted:
                if port in used:
                    raise Conflict("vpn_start", f"VPN port {port} is taken")
            return wanted
        free = (p for p in range(default_start, 65536) if p not in used)
        result = [p for _, p in zip(range(count), free, strict=False)]
        if len(result) < count:
            raise Conflict("vpn_start", "no VPN ports are left below 65535")
        return result

    def networks_for(self, connection: Connection, project: Row[Any]) -> list[Row[Any]]:
        own = connection.execute(
            select(networks).where(networks.c.project_id == project.id)
        ).first()
        if own is not None:
            return [own]
        # First launch of the project: take the lowest free VLAN network. The caller
        # holds the project's row lock, so two first launches cannot take two networks.
        free = connection.execute(
            select(networks.c.id)
            .where(networks.c.manager == self.kind, networks.c.project_id.is_(None))
            .order_by(networks.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).scalar()
        if free is None:
            raise NoMoreNetworks(project.name)
        connection.execute(
            update(networks).where(networks.c.id == free).values(project_id=project.id)
        )
        return [connection.execute(select(networks).where(networks.c.id == free)).one()]
