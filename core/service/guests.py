"""What a guest gets from its network: `network modify` (DNS, MTU, lease time, host,
project), project keys, and what the metadata service tells an instance about itself."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from core import ipv6, validate
from core.errors import Conflict, InvalidInput, NotFound
from core.managers.base import SEGMENT_OVERHEAD, address_v6, effective_mtu
from core.managers.capabilities import capabilities
from core.managers.vlan import SEGMENTATIONS, VlanManager
from core.service.names import refuse_taken
from core.service.part import Part
from core.store.schema import (
    fixed_ips,
    floating_ips,
    hosts,
    instance_security_groups,
    instances,
    keys,
    networks,
    projects,
    security_groups,
)
from core.views import KeyView, MetadataView, NetworkView

if TYPE_CHECKING:
    from core.service.base import ServiceContext
    from core.service.networks import NetworksPart

UNSET = object()


class GuestsPart(Part):
    def __init__(self, context: ServiceContext, networks: NetworksPart) -> None:
        super().__init__(context)
        self._networks = networks

    # -- network modify ---------------------------------------------------------------

    def modify_network(
        self,
        ref: str | int,
        *,
        dns1: Any = UNSET,
        dns2: Any = UNSET,
        mtu: Any = UNSET,
        dhcp_lease_time: Any = UNSET,
        fixed_range_v6: Any = UNSET,
        ipv6_mode: str | None = None,
        host: str | None = None,
        project: str | None = None,
        disassociate_project: bool = False,
        disassociate_host: bool = False,
        segmentation: str | None = None,
    ) -> NetworkView:
        """Change what a network hands its guests and who it belongs to; one transaction.

        ``dns1``/``dns2``/``mtu``/``dhcp_lease_time``: a value, or None (or "") to go back
        to the default; left out, unchanged. ``fixed_range_v6``: the network's IPv6 /64,
        or None (or "") for IPv4 only; the instances' IPv6 addresses follow it (and
        ``ipv6_mode``) in the same transaction. ``segmentation``: "vlan" (802.1Q) or
        "vxlan" for a VLAN network's segment, keeping its id, while no instance is
        plugged into it (a kernel without 802.1Q, or a move to VXLAN between hosts)."""
        values: dict[str, Any] = {}
        subnet_v6 = _network_v6(fixed_range_v6) if fixed_range_v6 not in (UNSET, None, "") else None
        if ipv6_mode is not None:
            ipv6.mode("ipv6_mode", ipv6_mode)
        if segmentation is not None and segmentation not in SEGMENTATIONS:
            raise InvalidInput("segmentation", f"{segmentation!r} must be vlan or vxlan")
        for name, given in (("dns1", dns1), ("dns2", dns2)):
            if given is not UNSET:
                values[name] = str(validate.ipv4_address(name, given)) if given else None
        if dhcp_lease_time is not UNSET:
            values["dhcp_lease_time"] = (
                validate.integer("dhcp_lease_time", dhcp_lease_time, 120, 2**31 - 1)
                if dhcp_lease_time not in (None, "")
                else None
            )
        if host is not None:
            validate.host_name("host", host)
        if host is not None and disassociate_host:
            raise InvalidInput("host", "give --host or --disassociate-host, not both")
        if project is not None and disassociate_project:
            raise InvalidInput("project", "give --project or --disassociate-project, not both")
        with self._change("network.modify", str(ref)) as (connection, audit):
            network = self._network(connection, ref)
            if fixed_range_v6 is not UNSET or ipv6_mode is not None:
                values.update(_v6_change(connection, network, fixed_range_v6, subnet_v6, ipv6_mode))
            segment_kind = network.segmentation
            if segmentation is not None:
                self._check_segmentation(connection, network, segmentation)
                values["segmentation"] = segment_kind = segmentation
            ceiling = self.settings.physical_mtu - SEGMENT_OVERHEAD.get(segment_kind, 0)
            if mtu is not UNSET:
                values["mtu"] = validate.mtu("mtu", mtu, ceiling) if mtu not in (None, "") else None
            elif segmentation is not None and network.mtu is not None and network.mtu > ceiling:
                raise Conflict(
                    "segmentation",
                    f"{network.cidr} has MTU {network.mtu}, more than a {segmentation} "
                    f"segment carries here ({ceiling}); give --mtu too",
                )
            if host is not None:
                self._check_live_host(connection, host)
                values["host"] = host
            if disassociate_host:
                self._check_unused(connection, network, "--disassociate-host")
                values["host"] = None
            if project is not None:
                values["project_id"] = self._take_for_project(connection, network, project)
            if disassociate_project:
                self._check_unused(connection, network, "--disassociate-project")
                values.update(project_id=None, vpn_enabled=False)
            if not values:
                raise InvalidInput("network modify", "nothing to change; give an option")
            # Only what differs is written: a modify that changes nothing records no
            # event and owes no host an apply (the caller sees no new last_change).
            values = {name: v for name, v in values.items() if network._mapping[name] != v}
            moved = (
                self._move_floating_with(connection, network, network.host)
                if host is not None and "host" not in values
                else []
            )
            audit.skip = not values and not moved
            if values:
                connection.execute(
                    update(networks).where(networks.c.id == network.id).values(**values)
                )
            if {"cidr_v6", "ipv6_mode"} & values.keys():
                _readdress_v6(connection, network.id)
            audit.target = network.cidr
            audit.before = {name: network._mapping[name] for name in values}
            audit.after = values
            audit.network_ids.add(network.id)
            if network.host is not None:
                audit.hosts.add(network.host)
            audit.floating_addresses.update(moved)
            if "host" in values:
                audit.floating_addresses.update(
                    self._move_floating_with(connection, network, values["host"])
                )
        return self._networks.get_network(network.id)

    def _check_live_host(self, connection: Connection, host: str) -> None:
        cutoff = self.clock() - timedelta(seconds=self.settings.host_down_time)
        beat = connection.execute(
            select(hosts.c.last_heartbeat).where(hosts.c.name == host)
        ).first()
        if beat is None:
            raise NotFound("host", f"no network host named {host!r} has registered")
        if beat[0] is None or beat[0] < cutoff:
            raise Conflict("host", f"{host} is down (no heartbeat within host_down_time)")

    def _check_segmentation(
        self, connection: Connection, network: Row[Any], segmentation: str
    ) -> None:
        if not capabilities(network.manager).isolates or network.vlan is None:
            raise InvalidInput(
                "segmentation",
                f"{network.cidr} is a {network.manager} network; only VLAN networks have a segment",
            )
        if segmentation == "vlan" and network.vlan > VlanManager.max_vlan_id:
            raise Conflict(
                "segmentation",
                f"{network.cidr}'s segment id {network.vlan} is above "
                f"{VlanManager.max_vlan_id}, the most an 802.1Q tag holds",
            )
        self._check_unused(connection, network, "--segmentation")

    def _check_unused(self, connection: Connection, network: Row[Any], what: str) -> None:
        used = connection.execute(
            select(func.count(fixed_ips.c.id)).where(
                fixed_ips.c.network_id == network.id, fixed_ips.c.instance_id.is_not(None)
            )
        ).scalar()
        if used:
            raise Conflict(
                "network", f"{network.cidr} still has {used} instance(s); {what} would cut them off"
            )

    def _take_for_project(self, connection: Connection, network: Row[Any], project: str) -> int:
        owner = self._project(connection, project, lock=True)
        if not capabilities(network.manager).isolates:
            raise Conflict(
                "project", f"{network.cidr} is a {network.manager} network, shared by every project"
            )
        if network.project_id not in (None, owner.id):
            self._check_unused(connection, network, "--project")
        taken = connection.execute(
            select(networks.c.cidr).where(
                networks.c.project_id == owner.id, networks.c.id != network.id
            )
        ).scalar()
        if taken is not None:
            raise Conflict("project", f"{owner.name} already has VLAN network {taken}")
        return int(owner.id)

    def _move_floating_with(
        self, connection: Connection, network: Row[Any], host: str | None
    ) -> list[str]:
        """Floating IPs NATed to this network's instances follow the network's host."""
        if host is None or network.multi_host:
            return []
        moved = connection.execute(
            update(floating_ips)
            .where(
                floating_ips.c.fixed_ip_id.in_(
                    select(fixed_ips.c.id).where(fixed_ips.c.network_id == network.id)
                ),
                floating_ips.c.host != host,
            )
            .values(host=host)
            .returning(floating_ips.c.address)
        )
        return list(moved.scalars())

    # -- keys -------------------------------------------------------------------------

    def add_key(self, project: str, name: str, public_key: str) -> KeyView:
        validate.name("name", name)
        text, fingerprint = validate.public_key("public_key", public_key)
        with self._change("key.add", f"{project}/{name}") as (connection, audit):
            owner = self._project(connection, project)
            refuse_taken(
                connection,
                keys.c.name,
                name,
                keys.c.project_id == owner.id,
                field="name",
                taken=f"{owner.name} already has a key named {name!r}",
                what=f"{owner.name}'s key",
            )
            connection.execute(
                insert(keys).values(
                    project_id=owner.id,
                    name=name,
                    public_key=text,
                    fingerprint=fingerprint,
                    created_at=self.clock(),
                )
            )
            audit.after = {"fingerprint": fingerprint}
            return _key_views(connection, keys.c.project_id == owner.id, keys.c.name == name)[0]

    def list_keys(self, project: str | None = None) -> list[KeyView]:
        with self.db.read() as connection:
            if project is None:
                return _key_views(connection)
            owner = self._project(connection, project)
            return _key_views(connection, keys.c.project_id == owner.id)

    def delete_key(self, project: str, name: str) -> KeyView:
        with self._change("key.delete", f"{project}/{name}") as (connection, audit):
            key = self._key(connection, project, name)
            (view,) = _key_views(connection, keys.c.id == key.id)
            if view.instances:
                raise Conflict("name", f"{name} is the key of {view.instances} instance(s)")
            connection.execute(delete(keys).where(keys.c.id == key.id))
            audit.before = {"fingerprint": view.fingerprint}
        return view

    def _key(self, connection: Connection, project: str, name: str) -> Row[Any]:
        owner = self._project(connection, project)
        validate.name("key", name)
        key = connection.execute(
            select(keys).where(keys.c.project_id == owner.id, keys.c.name == name)
        ).first()
        if key is None:
            raise NotFound("key", f"{owner.name} has no key named {name!r}")
        return key

    # -- metadata ---------------------------------------------------------------------

    def instance_metadata_v6(self, address: str, via: str) -> MetadataView | None:
        """What the metadata service tells the instance that asked over IPv6: ``via`` is
        the address in a /64 the connection was DNATed to (which names the network), and
        ``address`` its source there, the instance's link-local address (formed from
        its MAC) or its global one; IPv6 anti-spoofing makes either its own."""
        try:
            source = ipaddress.IPv6Address(address.split("%")[0])
            arrived = ipaddress.IPv6Address(via.split("%")[0])
        except ValueError:
            return None
        mac = _mac_of_link_local(source)
        with self.db.read() as connection:
            found = connection.execute(
                select(fixed_ips.c.address)
                .join(networks, fixed_ips.c.network_id == networks.c.id)
                .where(
                    # The /64 of the address it arrived at: ::1, or a multi host's own.
                    networks.c.cidr_v6 == str(ipaddress.IPv6Network((arrived, ipv6.PREFIX), False)),
                    fixed_ips.c.instance_id.is_not(None),
                    fixed_ips.c.mac == mac
                    if mac is not None
                    else fixed_ips.c.address_v6 == str(source),
                )
            ).scalar()
        view = self.instance_metadata(found) if found is not None else None
        # Its IPv6 router is the address it asked through (its own host's).
        return view._replace(gateway_v6=str(arrived)) if view is not None else None

    def instance_metadata(self, address: str, via: str | None = None) -> MetadataView | None:
        """What the metadata service tells the instance whose fixed IP is ``address`` (its
        source address, which anti-spoofing guarantees); None when no instance has it.

        ``via``: the gateway the request arrived at (the DNAT sends each bridge's guests
        to the address their host serves their network from: its gateway, or on a
        multi-host network that host's own), so the address must be one of that network."""
        text = str(validate.ipv4_address("address", address))
        arrived = int(validate.ipv4_address("via", via)) if via is not None else None
        with self.db.read() as connection:
            row = connection.execute(
                select(
                    instances.c.id,
                    instances.c.name,
                    instances.c.user_data,
                    instances.c.host,
                    projects.c.name.label("project"),
                    fixed_ips.c.address,
                    fixed_ips.c.address_v6.label("instance_address_v6"),
                    fixed_ips.c.mac,
                    networks,
                    keys.c.name.label("key_name"),
                    keys.c.public_key,
                )
                .select_from(fixed_ips)
                .join(instances, fixed_ips.c.instance_id == instances.c.id)
                .join(projects, instances.c.project_id == projects.c.id)
                .join(networks, fixed_ips.c.network_id == networks.c.id)
                .outerjoin(keys, instances.c.key_id == keys.c.id)
                .where(
                    fixed_ips.c.address == text,
                    *(
                        []
                        if arrived is None
                        else [networks.c.first_int <= arrived, networks.c.last_int >= arrived]
                    ),
                )
            ).first()
            if row is None:
                return None
            floating = connection.execute(
                select(floating_ips.c.address)
                .join(fixed_ips, floating_ips.c.fixed_ip_id == fixed_ips.c.id)
                .where(fixed_ips.c.address == text)
            ).scalar()
            groups = tuple(
                connection.execute(
                    select(security_groups.c.name)
                    .join(
                        instance_security_groups,
                        instance_security_groups.c.security_group_id == security_groups.c.id,
                    )
                    .where(instance_security_groups.c.instance_id == row.id)
                    .order_by(security_groups.c.name)
                ).scalars()
            )
        # The instance's router is the address it asked through (its own host's).
        gateway = via if via is not None else row.gateway
        dns = tuple(d for d in (row.dns1, row.dns2) if d) or (gateway,)
        return MetadataView(
            instance_id=row.id,
            name=row.name,
            project=row.project,
            host=row.host,
            address=row.address,
            mac=row.mac or "",
            cidr=row.cidr,
            netmask=row.netmask,
            gateway=gateway,
            dns=dns,
            mtu=effective_mtu(row, self.settings.physical_mtu),
            domain=self.settings.dhcp_domain,
            floating=floating,
            security_groups=groups,
            key_name=row.key_name,
            public_key=row.public_key,
            user_data=row.user_data,
            address_v6=row.instance_address_v6,
            cidr_v6=row.cidr_v6,
            gateway_v6=row.gateway_v6,
            ipv6_mode=row.ipv6_mode,
        )


_LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")


def _mac_of_link_local(address: ipaddress.IPv6Address) -> str | None:
    """The MAC a modified EUI-64 link-local address was formed from (None: it was not)."""
    if address not in _LINK_LOCAL:
        return None
    iid = address.packed[8:]
    if iid[3:5] != b"\xff\xfe":
        return None
    return ":".join(f"{b:02x}" for b in (iid[0] ^ 0x02, *iid[1:3], *iid[5:]))


def _key_views(connection: Connection, *where: Any) -> list[KeyView]:
    used = (
        select(instances.c.key_id, func.count(instances.c.id).label("n"))
        .where(instances.c.key_id.is_not(None))
        .group_by(instances.c.key_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            keys.c.id,
            projects.c.name,
            keys.c.name,
            keys.c.fingerprint,
            keys.c.public_key,
            func.coalesce(used.c.n, 0),
            keys.c.created_at,
        )
        .join(projects, keys.c.project_id == projects.c.id)
        .outerjoin(used, used.c.key_id == keys.c.id)
        .where(*where)
        .order_by(projects.c.name, keys.c.name)
    )
    return [KeyView(*row) for row in rows]


def _network_v6(text: Any) -> ipaddress.IPv6Network:
    subnet = ipv6.ipv6_range("fixed_range_v6", text)
    if subnet.prefixlen != ipv6.PREFIX:
        raise InvalidInput(
            "fixed_range_v6",
            f"{subnet} is a /{subnet.prefixlen}; a network's IPv6 subnet is a /{ipv6.PREFIX}",
        )
    return subnet


def _v6_change(
    connection: Connection,
    network: Row[Any],
    given: Any,
    subnet: ipaddress.IPv6Network | None,
    mode: str | None,
) -> dict[str, Any]:
    """The networks columns a change of IPv6 range or mode writes."""
    if given is UNSET:
        if network.cidr_v6 is None:
            raise InvalidInput("ipv6_mode", "the network has no IPv6; give --fixed-range-v6")
        return {"ipv6_mode": mode}
    if subnet is None:
        if mode is not None:
            raise InvalidInput("ipv6_mode", "needs an IPv6 range (--fixed-range-v6)")
        return {"cidr_v6": None, "gateway_v6": None, "ipv6_mode": None}
    for other_cidr, other in connection.execute(
        select(networks.c.cidr, networks.c.cidr_v6).where(
            networks.c.cidr_v6.is_not(None), networks.c.id != network.id
        )
    ):
        if ipaddress.IPv6Network(other).overlaps(subnet):
            raise InvalidInput(
                "fixed_range_v6", f"{subnet} overlaps {other}, network {other_cidr}'s range"
            )
    return {
        "cidr_v6": str(subnet),
        "gateway_v6": str(ipv6.gateway(subnet)),
        "ipv6_mode": mode or network.ipv6_mode or ipv6.DEFAULT_MODE,
    }


def _readdress_v6(connection: Connection, network_id: int) -> None:
    """Give every instance on the network the IPv6 address its range and mode make."""
    network = connection.execute(select(networks).where(networks.c.id == network_id)).one()
    rows = connection.execute(
        select(fixed_ips.c.id, fixed_ips.c.mac, fixed_ips.c.address_int).where(
            fixed_ips.c.network_id == network_id, fixed_ips.c.mac.is_not(None)
        )
    ).all()
    # Cleared first: a new range may hand a row the address another row had.
    connection.execute(
        update(fixed_ips).where(fixed_ips.c.network_id == network_id).values(address_v6=None)
    )
    for fixed_id, mac, address_int in rows:
        connection.execute(
            update(fixed_ips)
            .where(fixed_ips.c.id == fixed_id)
            .values(address_v6=address_v6(network, mac, address_int))
        )
