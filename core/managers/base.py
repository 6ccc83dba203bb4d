"""What the three managers share: cutting subnets, reserving addresses, allocating them."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import false, select, text, update
from sqlalchemy.orm import Session

from core.errors import NoMoreFixedIps
from core.store.db import bulk_insert
from core.store.models import FixedIP, Instance, Network, Project

FIXED_IP_COLUMNS = ("address", "address_int", "network_id", "reserved", "allocated", "leased")
FixedIPRow = tuple[str, int, int, bool, bool, bool]


@dataclass(frozen=True)
class SubnetPlan:
    """One network that ``network create`` is about to write."""

    subnet: ipaddress.IPv4Network
    label: str
    bridge: str
    vlan: int | None = None
    vpn_public_port: int | None = None


class NetworkManager:
    """Rules of one manager. Instances are stateless; the session carries the state."""

    kind: ClassVar[str]
    # Addresses kept from instances at the bottom (network, gateway, ...) and at the top
    # (broadcast, ...) of every subnet.
    reserved_bottom: ClassVar[int] = 2
    reserved_top: ClassVar[int] = 1
    # The smallest subnet that still leaves one address for an instance.
    min_network_size: ClassVar[int] = 4
    # Without DHCP nothing can hold a lease, so an address is free again at once.
    waits_for_lease: ClassVar[bool] = True
    injects_config: ClassVar[bool] = False
    # Only VLAN networks have a project VPN; its address is the one after the gateway.
    has_vpn: ClassVar[bool] = False

    def top_reserved(self, cnt_vpn_clients: int) -> int:
        return self.reserved_top

    def network_row(
        self,
        plan: SubnetPlan,
        *,
        dns: str | None,
        bridge_interface: str | None,
        segmentation: str | None,
        vpn_public_address: str | None,
        created_at: datetime,
    ) -> Network:
        subnet = plan.subnet
        hosts = subnet.num_addresses
        return Network(
            label=plan.label,
            manager=self.kind,
            cidr=str(subnet),
            first_int=int(subnet.network_address),
            last_int=int(subnet.broadcast_address),
            netmask=str(subnet.netmask),
            gateway=str(subnet.network_address + 1),
            broadcast=str(subnet.broadcast_address),
            dhcp_start=str(subnet.network_address + min(self.reserved_bottom, hosts - 1)),
            dns1=dns,
            bridge=plan.bridge,
            bridge_interface=bridge_interface,
            segmentation=segmentation,
            vlan=plan.vlan,
            vpn_public_port=plan.vpn_public_port,
            vpn_public_address=vpn_public_address,
            vpn_private_address=str(subnet.network_address + 2) if self.has_vpn else None,
            created_at=created_at,
        )

    def fixed_ip_rows(self, network: Network, cnt_vpn_clients: int) -> Iterator[FixedIPRow]:
        """One row per address of the subnet, reserved ones marked, for a bulk insert."""
        first, last = network.first_int, network.last_int
        count = last - first + 1
        bottom = self.reserved_bottom
        top = self.top_reserved(cnt_vpn_clients)
        to_text = ipaddress.IPv4Address
        for index, value in enumerate(range(first, last + 1)):
            reserved = index < bottom or count - index <= top
            yield (str(to_text(value)), value, network.id, reserved, False, False)

    def insert_fixed_ips(self, session: Session, network: Network, cnt_vpn_clients: int) -> None:
        bulk_insert(
            session, "fixed_ips", FIXED_IP_COLUMNS, self.fixed_ip_rows(network, cnt_vpn_clients)
        )

    # -- allocation -----------------------------------------------------------------

    def allocate_fixed_ip(
        self,
        session: Session,
        network: Network,
        instance: Instance,
        mac: str,
        now: datetime,
        timeout: int,
    ) -> FixedIP:
        fixed = self._first_free(session, network)
        if (
            fixed is None
            and self.waits_for_lease
            and self._reclaim_stale(session, network, now, timeout)
        ):
            fixed = self._first_free(session, network)
        if fixed is None:
            raise NoMoreFixedIps(f"{network.label} ({network.cidr})")
        fixed.instance_id = instance.id
        fixed.mac = mac
        fixed.allocated = True
        fixed.released_at = None
        return fixed

    def _first_free(self, session: Session, network: Network) -> FixedIP | None:
        """The lowest free address, found through the partial index of free rows only,
        so the cost stays flat however full the network is."""
        if session.get_bind().dialect.name == "sqlite":
            # SQLite's planner prefers ix_fixed_ips_network_address (same leading
            # columns) and then steps over every allocated row, so name the index. The
            # write transaction already holds the database lock: no row lock needed.
            named = select(FixedIP).from_statement(
                text(
                    "SELECT * FROM fixed_ips INDEXED BY ix_fixed_ips_free "
                    "WHERE network_id = :network_id AND instance_id IS NULL "
                    "AND reserved = 0 AND leased = 0 ORDER BY address_int LIMIT 1"
                ).bindparams(network_id=network.id)
            )
            return session.scalars(named).first()
        # SKIP LOCKED lets concurrent launches on PostgreSQL take different rows.
        query = (
            select(FixedIP)
            .where(
                FixedIP.network_id == network.id,
                FixedIP.instance_id.is_(None),
                FixedIP.reserved == false(),
                FixedIP.leased == false(),
            )
            .order_by(FixedIP.address_int)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return session.scalars(query).first()

    def _reclaim_stale(
        self, session: Session, network: Network, now: datetime, timeout: int
    ) -> bool:
        """Free addresses whose DHCP lease never went away after release (the timeout)."""
        result = session.execute(
            update(FixedIP)
            .where(
                FixedIP.network_id == network.id,
                FixedIP.instance_id.is_(None),
                FixedIP.leased.is_(True),
                FixedIP.released_at < now - timedelta(seconds=timeout),
            )
            .values(leased=False, mac=None, released_at=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_fixed_ip(self, fixed: FixedIP, now: datetime) -> None:
        fixed.instance_id = None
        fixed.allocated = False
        if self.waits_for_lease and fixed.leased:
            # Reused only once dnsmasq reports the lease gone (or after the timeout):
            # handing it out earlier gives two machines one address.
            fixed.released_at = now
        else:
            fixed.mac = None
            fixed.leased = False
            fixed.released_at = None

    def networks_for(self, session: Session, project: Project) -> list[Network]:
        """The networks an instance of ``project`` takes an address from, in order."""
        query = select(Network).where(Network.manager == self.kind).order_by(Network.id)
        return list(session.scalars(query))


def random_mac(rng: random.Random) -> str:
    # fa:16:3e is the prefix nova used; the 4th octet stays below 0x80 as it did.
    octets = (rng.randint(0x00, 0x7F), rng.randint(0x00, 0xFF), rng.randint(0x00, 0xFF))
    return "fa:16:3e:" + ":".join(f"{octet:02x}" for octet in octets)
