"""What the three managers share: cutting subnets, reserving addresses, allocating them."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Row, false, select, text, update

from core import ipv6, validate
from core.errors import InvalidInput, NoMoreFixedIps
from core.managers.capabilities import Capabilities
from core.managers.mtu import SEGMENT_OVERHEAD as SEGMENT_OVERHEAD
from core.managers.mtu import effective_mtu as effective_mtu
from core.store.db import bulk_insert
from core.store.schema import fixed_ips, networks

if TYPE_CHECKING:
    from core.config import Settings

FIXED_IP_COLUMNS = ("address", "address_int", "network_id", "reserved", "allocated", "leased")
FixedIPRow = tuple[str, int, int, bool, bool, bool]


@dataclass(frozen=True)
class NetworkRequest:
    """What `network create` was asked for, each field checked (defaults still None)."""

    cidr: ipaddress.IPv4Network
    count: int
    size: int
    label: str | None = None
    bridge: str | None = None
    bridge_interface: str | None = None
    dns: str | None = None
    segmentation: str | None = None
    vlan_start: int | str | None = None
    vpn_start: int | str | None = None
    multi_host: bool = False


@dataclass(frozen=True)
class SubnetPlan:
    """One network that ``network create`` is about to write."""

    subnet: ipaddress.IPv4Network
    label: str
    bridge: str
    vlan: int | None = None
    vpn_public_port: int | None = None


class NetworkManager:
    """Rules of one manager. Instances are stateless; the connection carries the state."""

    kind: ClassVar[str]
    # Addresses kept from instances at the bottom (network, gateway, ...) and at the top
    # (broadcast, ...) of every subnet.
    reserved_bottom: ClassVar[int] = 2
    reserved_top: ClassVar[int] = 1
    # The smallest subnet that still leaves one address for an instance.
    min_network_size: ClassVar[int] = 4
    # Without DHCP nothing can hold a lease, so an address is free again at once.
    waits_for_lease: ClassVar[bool] = True
    # The flat managers may use a bridge the admin made; VLAN bridges are netcon's own.
    accepts_admin_bridge: ClassVar[bool] = True

    capabilities: ClassVar[Capabilities]

    @property
    def injects_config(self) -> bool:
        return self.capabilities.injects_config

    @property
    def runs_vpn(self) -> bool:
        """A project VPN per network; its address is the one after the gateway."""
        return self.capabilities.runs_vpn

    def top_reserved(self, cnt_vpn_clients: int) -> int:
        return self.reserved_top

    # -- network create ---------------------------------------------------------------

    def complete_request(self, request: NetworkRequest, settings: Settings) -> NetworkRequest:
        """The request with this manager's rules applied and its defaults filled in."""
        if request.segmentation is not None:
            raise InvalidInput("segmentation", f"only VLAN networks are segmented, not {self.kind}")
        if request.vlan_start is not None or request.vpn_start is not None:
            field = "vlan_start" if request.vlan_start is not None else "vpn_start"
            raise InvalidInput(field, f"only VLAN networks have one, not {self.kind}")
        if request.count != 1:
            raise InvalidInput("num_networks", f"a {self.kind} network is created one at a time")
        bridge = request.bridge if request.bridge is not None else settings.flat_network_bridge
        # A Flat guest is told its resolver in the injected configuration; a FlatDHCP
        # guest gets its network's dnsmasq, which also knows its neighbours' names.
        default_dns = settings.flat_network_dns or None if self.injects_config else None
        return replace(
            request,
            bridge=validate.ifname("bridge", bridge),
            dns=request.dns if request.dns is not None else default_dns,
        )

    def subnet_plans(
        self,
        connection: Connection,
        request: NetworkRequest,
        subnets: list[ipaddress.IPv4Network],
        settings: Settings,
    ) -> list[SubnetPlan]:
        """Label, bridge and (VLAN) segment and VPN port of each new network."""
        assert request.bridge is not None
        return [SubnetPlan(subnets[0], request.label or self.kind, request.bridge)]

    def network_values(
        self,
        plan: SubnetPlan,
        request: NetworkRequest,
        created_at: datetime,
    ) -> dict[str, Any]:
        """The networks row for ``plan``: gateway, DHCP start and reserved roles as this
        manager places them."""
        subnet = plan.subnet
        hosts = subnet.num_addresses
        return {
            "label": plan.label,
            "manager": self.kind,
            "cidr": str(subnet),
            "first_int": int(subnet.network_address),
            "last_int": int(subnet.broadcast_address),
            "netmask": str(subnet.netmask),
            "gateway": str(subnet.network_address + 1),
            "broadcast": str(subnet.broadcast_address),
            "dhcp_start": str(subnet.network_address + min(self.reserved_bottom, hosts - 1)),
            "dns1": request.dns,
            "bridge": plan.bridge,
            "bridge_interface": request.bridge_interface,
            "segmentation": request.segmentation,
            "vlan": plan.vlan,
            "vpn_public_port": plan.vpn_public_port,
            "vpn_private_address": str(subnet.network_address + 2) if self.runs_vpn else None,
            "multi_host": request.multi_host,
            "created_at": created_at,
        }

    def fixed_ip_rows(
        self, network_id: int, first: int, last: int, cnt_vpn_clients: int
    ) -> Iterator[FixedIPRow]:
        """One row per address of the subnet, reserved ones marked, for a bulk insert."""
        count = last - first + 1
        bottom = self.reserved_bottom
        top = self.top_reserved(cnt_vpn_clients)
        to_text = ipaddress.IPv4Address
        for index, value in enumerate(range(first, last + 1)):
            reserved = index < bottom or count - index <= top
            yield (str(to_text(value)), value, network_id, reserved, False, False)

    def insert_fixed_ips(
        self, connection: Connection, network_id: int, first: int, last: int, cnt: int
    ) -> None:
        bulk_insert(
            connection,
            "fixed_ips",
            FIXED_IP_COLUMNS,
            self.fixed_ip_rows(network_id, first, last, cnt),
        )

    # -- allocation -----------------------------------------------------------------

    def allocate_fixed_ip(
        self,
        connection: Connection,
        network: Row[Any],
        instance_id: int,
        mac: str,
        now: datetime,
        timeout: int,
    ) -> Row[Any]:
        """Give the lowest free address of ``network`` to the instance; returns its row."""
        free = self._first_free(connection, network.id)
        if (
            free is None
            and self.waits_for_lease
            and self._reclaim_stale(connection, network.id, now, timeout)
        ):
            free = self._first_free(connection, network.id)
        if free is None:
            raise NoMoreFixedIps(f"{network.label} ({network.cidr})")
        fixed_id, address_int = free
        connection.execute(
            update(fixed_ips)
            .where(fixed_ips.c.id == fixed_id)
            .values(
                instance_id=instance_id,
                mac=mac,
                address_v6=address_v6(network, mac, address_int),
                allocated=True,
                released_at=None,
            )
        )
        return connection.execute(select(fixed_ips).where(fixed_ips.c.id == fixed_id)).one()

    def take_host_address(self, connection: Connection, network: Row[Any]) -> int:
        """A free address of ``network`` for a host's own use (its gateway on a
        multi-host network); returns its row id."""
        free = self._first_free(connection, network.id)
        if free is None:
            raise NoMoreFixedIps(f"{network.label} ({network.cidr})")
        return free[0]

    def _first_free(self, connection: Connection, network_id: int) -> tuple[int, int] | None:
        """The lowest free address (row id, address as an integer), found through the
        partial index of free rows only, so the cost stays flat however full the network
        is."""
        if connection.dialect.name == "sqlite":
            # SQLite's planner prefers ix_fixed_ips_network_address (same leading
            # columns) and then steps over every allocated row, so name the index. The
            # write transaction already holds the database lock: no row lock needed.
            found = connection.execute(
                text(
                    "SELECT id, address_int FROM fixed_ips INDEXED BY ix_fixed_ips_free "
                    "WHERE network_id = :network_id AND instance_id IS NULL "
                    "AND reserved = 0 AND leased = 0 ORDER BY address_int LIMIT 1"
                ),
                {"network_id": network_id},
            ).first()
        else:
            # SKIP LOCKED lets concurrent launches on PostgreSQL take different rows.
            found = connection.execute(
                select(fixed_ips.c.id, fixed_ips.c.address_int)
                .where(
                    fixed_ips.c.network_id == network_id,
                    fixed_ips.c.instance_id.is_(None),
                    fixed_ips.c.reserved == false(),
                    fixed_ips.c.leased == false(),
                )
                .order_by(fixed_ips.c.address_int)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
        return None if found is None else (int(found[0]), int(found[1]))

    def _reclaim_stale(
        self, connection: Connection, network_id: int, now: datetime, timeout: int
    ) -> bool:
        """Free addresses whose DHCP lease never went away after release (the timeout)."""
        result = connection.execute(
            update(fixed_ips)
            .where(
                fixed_ips.c.network_id == network_id,
                fixed_ips.c.instance_id.is_(None),
                fixed_ips.c.leased.is_(True),
                fixed_ips.c.released_at < now - timedelta(seconds=timeout),
            )
            .values(leased=False, mac=None, address_v6=None, released_at=None)
        )
        return bool(result.rowcount)

    def release_fixed_ip(self, connection: Connection, fixed: Row[Any], now: datetime) -> None:
        if self.waits_for_lease and fixed.leased:
            # Reused only once dnsmasq reports the lease gone (or after the timeout):
            # handing it out earlier gives two machines one address.
            values: dict[str, Any] = {"released_at": now}
        else:
            values = {"mac": None, "address_v6": None, "leased": False, "released_at": None}
        connection.execute(
            update(fixed_ips)
            .where(fixed_ips.c.id == fixed.id)
            .values(instance_id=None, allocated=False, **values)
        )

    def networks_for(self, connection: Connection, project: Row[Any]) -> list[Row[Any]]:
        """The networks an instance of ``project`` takes an address from, in order."""
        query = select(networks).where(networks.c.manager == self.kind).order_by(networks.c.id)
        return list(connection.execute(query))


def address_v6(network: Row[Any], mac: str, address_int: int) -> str | None:
    """The IPv6 address an instance with ``mac`` at IPv4 ``address_int`` has on
    ``network``; None on an IPv4-only network."""
    if network.cidr_v6 is None:
        return None
    subnet = ipaddress.IPv6Network(network.cidr_v6)
    offset = address_int - network.first_int
    return str(ipv6.instance_address(subnet, network.ipv6_mode, mac, offset))


def random_mac(rng: random.Random) -> str:
    # fa:16:3e is the prefix nova used; the 4th octet stays below 0x80 as it did.
    octets = (rng.randint(0x00, 0x7F), rng.randint(0x00, 0xFF), rng.randint(0x00, 0xFF))
    return "fa:16:3e:" + ":".join(f"{octet:02x}" for octet in octets)
