"""`network create/list/show/delete` and the fixed IPs of each network."""

from __future__ import annotations

import bisect
import ipaddress
import re
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Row,
    Select,
    TextClause,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from core import ipv6, validate
from core.errors import Conflict, InvalidInput
from core.managers.base import NetworkRequest
from core.managers.registry import manager as get_manager
from core.service.part import Part
from core.store import listing
from core.store.schema import fixed_ips, floating_ips, instances, networks, projects
from core.views import FixedIPView, NetworkView, Page

# Keys for PostgreSQL advisory locks: creating ranges checks overlaps against rows that
# a concurrent creator has not committed yet, so creators take turns.
RANGE_LOCK = 0x6E6574636F6E


class NetworksPart(Part):
    def create_networks(
        self,
        fixed_range: str | None = None,
        num_networks: int | str | None = None,
        network_size: int | str | None = None,
        vlan_start: int | str | None = None,
        vpn_start: int | str | None = None,
        fixed_range_v6: str | None = None,
        *,
        ipv6_mode: str | None = None,
        label: str | None = None,
        manager: str | None = None,
        bridge: str | None = None,
        bridge_interface: str | None = None,
        dns: str | None = None,
        segmentation: str | None = None,
        multi_host: bool = False,
    ) -> list[NetworkView]:
        s = self.settings
        mgr = get_manager(manager if manager is not None else "vlan")
        cidr = validate.usable_network(
            "fixed_range", fixed_range if fixed_range is not None else s.fixed_range
        )
        count = validate.integer(
            "num_networks", num_networks if num_networks is not None else s.num_networks, 1, 4094
        )
        size = validate.network_size(
            "network_size",
            network_size if network_size is not None else s.network_size,
            mgr.min_network_size,
        )
        if size > cidr.num_addresses:
            raise InvalidInput(
                "network_size", f"{size} is larger than fixed_range {cidr} ({cidr.num_addresses})"
            )
        if count * size > cidr.num_addresses:
            raise InvalidInput(
                "num_networks",
                f"{count} networks of {size} addresses need {count * size}; "
                f"{cidr} holds {cidr.num_addresses}",
            )
        request = mgr.complete_request(
            NetworkRequest(
                cidr=cidr,
                count=count,
                size=size,
                label=validate.name("label", label) if label is not None else None,
                bridge=bridge,
                bridge_interface=(
                    validate.ifname("bridge_interface", bridge_interface)
                    if bridge_interface is not None
                    else None
                ),
                dns=str(validate.ipv4_address("dns", dns)) if dns is not None else None,
                segmentation=segmentation,
                vlan_start=vlan_start,
                vpn_start=vpn_start,
                multi_host=bool(multi_host),
            ),
            s,
        )
        prefix = 32 - (size.bit_length() - 1)
        range_v6_text = fixed_range_v6 if fixed_range_v6 is not None else s.fixed_range_v6
        range_v6 = (
            ipv6.ipv6_range("fixed_range_v6", range_v6_text) if range_v6_text is not None else None
        )
        if ipv6_mode is not None and range_v6 is None:
            raise InvalidInput("ipv6_mode", "needs an IPv6 range (--fixed-range-v6)")
        mode_v6 = ipv6.mode("ipv6_mode", ipv6_mode if ipv6_mode is not None else s.ipv6_mode)

        with self._change("network.create", str(cidr)) as (connection, audit):
            self.db.advisory_lock(connection, RANGE_LOCK)
            subnets = self._free_subnets(connection, cidr, prefix, count)
            subnets_v6: list[ipaddress.IPv6Network | None] = [None] * count
            if range_v6 is not None:
                subnets_v6 = list(
                    ipv6.subnets("fixed_range_v6", range_v6, count, _ranges_v6(connection))
                )
            plans = mgr.subnet_plans(connection, request, subnets, s)
            for plan in plans:
                self._check_bridge_free(connection, plan.bridge)
                self._check_bridge_name(plan.bridge, admins=mgr.accepts_admin_bridge)
            made = []
            for plan, subnet_v6 in zip(plans, subnets_v6, strict=True):
                values = mgr.network_values(plan, request, self.clock())
                if subnet_v6 is not None:
                    values.update(_v6_values(subnet_v6, mode_v6))
                inserted = connection.execute(insert(networks).values(**values))
                (network_id,) = inserted.inserted_primary_key  # type: ignore[misc]
                mgr.insert_fixed_ips(
                    connection,
                    network_id,
                    values["first_int"],
                    values["last_int"],
                    s.cnt_vpn_clients,
                )
                made.append(network_id)
            audit.target = f"{len(plans)} {mgr.kind} network(s) in {cidr}"
            audit.after = [
                str(plan.subnet) if v6 is None else f"{plan.subnet} {v6}"
                for plan, v6 in zip(plans, subnets_v6, strict=True)
            ]
            audit.network_ids.update(made)
        with self.db.read() as connection:
            return _network_views(
                connection, self.settings.physical_mtu, "networks.id IN :ids", ids=made
            )

    def _free_subnets(
        self, connection: Connection, cidr: ipaddress.IPv4Network, prefix: int, count: int
    ) -> list[ipaddress.IPv4Network]:
        """The first ``count`` subnets of ``cidr`` that overlap nothing netcon has.

        As nova-network did, a subnet already in use is skipped for the next free one.
        """
        lo, hi = int(cidr.network_address), int(cidr.broadcast_address)
        taken = sorted(
            (int(first), int(last))
            for first, last in connection.execute(
                select(networks.c.first_int, networks.c.last_int).where(
                    networks.c.first_int <= hi, networks.c.last_int >= lo
                )
            )
        )
        starts = [first for first, _ in taken]
        step = 1 << (32 - prefix)
        chosen: list[ipaddress.IPv4Network] = []
        start = lo
        while start <= hi and len(chosen) < count:
            end = start + step - 1
            index = bisect.bisect_right(starts, end) - 1
            # Networks never overlap, so only the last one starting before ``end`` can
            # reach into this block.
            if index >= 0 and taken[index][1] >= start:
                start = lo + ((taken[index][1] - lo) // step + 1) * step
                continue
            floating = connection.execute(
                select(floating_ips.c.address)
                .where(floating_ips.c.address_int.between(start, end))
                .limit(1)
            ).scalar()
            if floating is None:
                chosen.append(ipaddress.IPv4Network((start, prefix)))
            start += step
        if len(chosen) < count:
            raise Conflict(
                "fixed_range",
                f"{cidr} has {len(chosen)} free /{prefix} subnet(s) left, not {count}; "
                "existing networks or floating IPs overlap it",
            )
        return chosen

    def _check_bridge_free(self, connection: Connection, bridge: str) -> None:
        holder = connection.execute(
            select(networks.c.cidr, networks.c.manager).where(networks.c.bridge == bridge)
        ).first()
        if holder is not None:
            raise Conflict("bridge", f"{bridge} already carries {holder[1]} network {holder[0]}")

    def _check_bridge_name(self, bridge: str, *, admins: bool) -> None:
        """A bridge may not be a link the host needs for something else: refused here,
        rather than making every later `host apply` fail."""
        s = self.settings
        roles = {"lo": "the loopback", s.public_interface: "the public interface"}
        roles.setdefault(s.vlan_interface, "the VLAN interface")
        if bridge in roles:
            raise Conflict("bridge", f"{bridge} is {roles[bridge]} of this host, not a bridge")
        if s.netns is not None:
            return  # a rehearsal namespace: its links are checked by `host plan`
        from core.linux.sysfs import local_link

        link = local_link(bridge)
        if link is None:
            return
        if not link.is_bridge:
            raise Conflict("bridge", f"{bridge} exists on this host and is not a bridge")
        if not admins and link.alias != "netcon":
            raise Conflict(
                "bridge", f"{bridge} exists on this host and is not netcon's; netcon makes br<vlan>"
            )

    # -- reading -------------------------------------------------------------------

    def list_networks(self, project: str | None = None) -> list[NetworkView]:
        with self.db.read() as connection:
            if project is None:
                return _network_views(connection, self.settings.physical_mtu)
            owner = self._project(connection, project)
            return _network_views(
                connection, self.settings.physical_mtu, "networks.project_id = :project",
                project=owner.id,
            )

    def get_network(self, ref: str | int) -> NetworkView:
        with self.db.read() as connection:
            network = self._network(connection, ref)
            return _network_views(
                connection, self.settings.physical_mtu, "networks.id = :id", id=network.id
            )[0]

    def delete_network(self, ref: str | int) -> NetworkView:
        with self._change("network.delete", str(ref)) as (connection, audit):
            network = self._network(connection, ref)
            (view,) = _network_views(
                connection, self.settings.physical_mtu, "networks.id = :id", id=network.id
            )
            if view.used:
                raise Conflict(
                    "network",
                    f"{network.cidr} has {view.used} address(es) in use by instances or DHCP "
                    "leases; terminate them first",
                )
            connection.execute(delete(fixed_ips).where(fixed_ips.c.network_id == network.id))
            connection.execute(delete(networks).where(networks.c.id == network.id))
            audit.target = network.cidr
            audit.before = view._asdict()
            audit.network_ids.add(network.id)
            if network.host is not None:
                audit.hosts.add(network.host)
        return view

    def list_fixed_ips(
        self,
        network: str | int | None = None,
        project: str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        *,
        in_use: bool = False,
        regex: bool = False,
        negate: bool = False,
    ) -> Page[FixedIPView]:
        """A window of fixed IPs in address order.

        ``search`` matches any of the columns a listing shows (address, state, instance,
        MAC, network, project), case-insensitively: as a substring, or as a regular expression
        with ``regex``; ``negate`` keeps the rows that do not match instead.
        """
        if search and regex:
            try:
                re.compile(search)
            except re.error as exc:
                raise InvalidInput("search", f"is not a regular expression ({exc})") from None
        with self.db.read() as connection:
            query = _fixed_query()
            if network is not None:
                network_id = self._network(connection, network).id
                query = query.where(fixed_ips.c.network_id == network_id)
            if project is not None:
                project_id = self._project(connection, project).id
                query = query.where(
                    or_(instances.c.project_id == project_id, networks.c.project_id == project_id)
                )
            if in_use:
                query = query.where(
                    or_(fixed_ips.c.instance_id.is_not(None), fixed_ips.c.leased.is_(True))
                )
            if search:
                matches = or_(
                    *(
                        _matches(column, search, regex, self.db.dialect)
                        for column in (
                            fixed_ips.c.address,
                            _FIXED_STATE,
                            func.coalesce(instances.c.name, "-"),
                            func.coalesce(fixed_ips.c.mac, "-"),
                            networks.c.cidr,
                            func.coalesce(_FIXED_PROJECT, "-"),
                        )
                    )
                )
                query = query.where(~matches if negate else matches)
            total = connection.execute(
                select(func.count()).select_from(query.subquery())
            ).scalar_one()
            query = query.order_by(fixed_ips.c.address_int).offset(max(0, offset))
            if limit is not None:
                query = query.limit(max(0, limit))
            rows = tuple(map(FixedIPView._make, connection.execute(query)))
            return Page(rows=rows, total=total, offset=offset)

    def reserve_fixed_ip(self, address: str) -> FixedIPView:
        with self._change("fixed.reserve", address) as (connection, audit):
            fixed = self._fixed_ip(connection, address)
            if fixed.reserved:
                raise Conflict("address", f"{fixed.address} is already reserved")
            if fixed.instance_id is not None or fixed.leased:
                raise Conflict("address", f"{fixed.address} is in use; release it first")
            self._set_reserved(connection, fixed, True)
            audit.target = fixed.address
            audit.after = {"reserved": True}
            audit.network_ids.add(fixed.network_id)
            return _fixed_view(connection, fixed.id)

    def unreserve_fixed_ip(self, address: str) -> FixedIPView:
        with self._change("fixed.unreserve", address) as (connection, audit):
            fixed = self._fixed_ip(connection, address)
            if not fixed.reserved:
                raise Conflict("address", f"{fixed.address} is not reserved")
            network = connection.execute(
                select(networks).where(networks.c.id == fixed.network_id)
            ).one()
            role = {
                network.cidr.split("/")[0]: "network address",
                network.gateway: "gateway",
                network.broadcast: "broadcast address",
                network.vpn_private_address: "VPN address",
            }.get(fixed.address)
            if role is not None:
                raise Conflict(
                    "address", f"{fixed.address} is the {role} of {network.cidr} and stays reserved"
                )
            if fixed.host is not None:
                self._check_host_gone(connection, fixed, network)
            self._set_reserved(connection, fixed, False)
            audit.target = fixed.address
            audit.after = {"reserved": False}
            audit.network_ids.add(fixed.network_id)
            return _fixed_view(connection, fixed.id)

    def _check_host_gone(self, connection: Connection, fixed: Row[Any], network: Row[Any]) -> None:
        """A host's own address on a multi-host network is given up only once the host
        has no instance there: it routes them and answers their DHCP from it."""
        running = connection.execute(
            select(func.count(instances.c.id))
            .join(fixed_ips, fixed_ips.c.instance_id == instances.c.id)
            .where(fixed_ips.c.network_id == network.id, instances.c.host == fixed.host)
        ).scalar()
        if running:
            raise Conflict(
                "address",
                f"{fixed.address} is the gateway of host {fixed.host} on {network.cidr}, which "
                f"serves {running} instance(s) there from it",
            )

    def _set_reserved(self, connection: Connection, fixed: Row[Any], reserved: bool) -> None:
        # Unreserved, a host's address is no longer its own: the next instance it gets
        # there takes a new one.
        values: dict[str, Any] = {"reserved": reserved}
        if not reserved:
            values["host"] = None
        connection.execute(update(fixed_ips).where(fixed_ips.c.id == fixed.id).values(**values))


# The state a listing shows for a fixed IP (FixedIPView.state), computed in the query so
# that a search can match it.
_FIXED_STATE = case(
    (fixed_ips.c.reserved.is_(True), "reserved"),
    (and_(fixed_ips.c.allocated.is_(True), fixed_ips.c.leased.is_(True)), "leased"),
    (fixed_ips.c.allocated.is_(True), "allocated"),
    (fixed_ips.c.leased.is_(True), "releasing"),
    else_="free",
)


def _ranges_v6(connection: Connection) -> list[ipaddress.IPv6Network]:
    return [
        ipaddress.IPv6Network(cidr)
        for (cidr,) in connection.execute(
            select(networks.c.cidr_v6).where(networks.c.cidr_v6.is_not(None))
        )
    ]


def _v6_values(subnet: ipaddress.IPv6Network, mode: str) -> dict[str, str]:
    return {"cidr_v6": str(subnet), "gateway_v6": str(ipv6.gateway(subnet)), "ipv6_mode": mode}


_INSTANCE_PROJECT = projects.alias("instance_project")
_OWNER = projects.alias("owner")
# A fixed IP's project: its instance's, else the project its network belongs to.
_FIXED_PROJECT = func.coalesce(_INSTANCE_PROJECT.c.name, _OWNER.c.name)


def _fixed_query() -> Select[Any]:
    """Fixed IPs with their network, instance and project, in FixedIPView's order."""
    instance_project = _INSTANCE_PROJECT
    owner = _OWNER
    return (
        select(
            fixed_ips.c.id,
            fixed_ips.c.address,
            networks.c.cidr,
            fixed_ips.c.network_id,
            instances.c.name,
            _FIXED_PROJECT,
            fixed_ips.c.mac,
            fixed_ips.c.reserved,
            fixed_ips.c.allocated,
            fixed_ips.c.leased,
            _FIXED_STATE,
            fixed_ips.c.host,
            fixed_ips.c.address_v6,
        )
        .select_from(fixed_ips)
        .join(networks, fixed_ips.c.network_id == networks.c.id)
        .outerjoin(instances, fixed_ips.c.instance_id == instances.c.id)
        .outerjoin(instance_project, instances.c.project_id == instance_project.c.id)
        .outerjoin(owner, networks.c.project_id == owner.c.id)
    )


def _matches(column: Any, search: str, regex: bool, dialect: str) -> ColumnElement[bool]:
    if regex:
        # SQLite's REGEXP is Python's re.search, which takes its flags inline.
        if dialect == "sqlite":
            return column.regexp_match(f"(?i){search}")  # type: ignore[no-any-return]
        return column.regexp_match(search, flags="i")  # type: ignore[no-any-return]
    pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if dialect == "sqlite":
        # SQLite's LIKE ignores ASCII case already; ilike would add lower() on each side.
        return column.like(pattern, escape="\\")  # type: ignore[no-any-return]
    return column.ilike(pattern, escape="\\")  # type: ignore[no-any-return]


def _fixed_view(connection: Connection, fixed_id: int) -> FixedIPView:
    return FixedIPView._make(
        connection.execute(_fixed_query().where(fixed_ips.c.id == fixed_id)).one()
    )


def _network_views(
    connection: Connection, physical_mtu: int, where: str = "", **params: object
) -> list[NetworkView]:
    """The networks ``where`` selects (all when empty), in address order. The SQL is the
    one listing of :mod:`core.store.listing`, which the console's first screen reads too."""

    def statement(sql: str) -> TextClause:
        clause = text(sql)
        lists: list[BindParameter[Any]] = [
            bindparam(name, expanding=True) for name, value in params.items()
            if isinstance(value, list)
        ]
        return clause.bindparams(*lists) if lists else clause

    rows = connection.execute(statement(listing.networks_sql(where)), params).all()
    counts = connection.execute(statement(listing.counts_sql(where)), params).all()
    return listing.network_views(rows, counts, physical_mtu)
