"""Floating IPs: an admin's pool, allocated to projects, associated with instances."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, insert, select, update

from core import validate
from core.errors import Conflict, NoMoreFloatingIps, NotFound, QuotaExceeded
from core.service.names import refuse_taken
from core.service.networks import RANGE_LOCK
from core.service.part import Part
from core.store.db import bulk_insert
from core.store.export import json_array
from core.store.schema import (
    fixed_ips,
    floating_ips,
    floating_pools,
    instances,
    networks,
    projects,
)
from core.views import FloatingIPView, FloatingRangeView


class FloatingPart(Part):
    def create_floating_range(
        self, host: str, ip_range: str, pool: str | None = None, interface: str | None = None
    ) -> FloatingRangeView:
        """Add every address of ``ip_range`` to ``pool`` on ``host``."""
        validate.host_name("host", host)
        span = validate.ip_range("ip_range", ip_range)
        validate.usable("ip_range", span.first, span.last, str(span))
        pool = validate.name(
            "pool", pool if pool is not None else self.settings.default_floating_pool
        )
        interface = validate.ifname(
            "interface", interface if interface is not None else self.settings.public_interface
        )
        with self._change("floating.create", str(span)) as (connection, audit):
            self.db.advisory_lock(connection, RANGE_LOCK)
            clash = connection.execute(
                select(floating_ips.c.address)
                .where(floating_ips.c.address_int.between(span.first, span.last))
                .order_by(floating_ips.c.address_int)
                .limit(1)
            ).scalar()
            if clash is not None:
                raise Conflict("ip_range", f"{ip_range} overlaps existing floating IP {clash}")
            network = connection.execute(
                select(networks.c.cidr)
                .where(networks.c.first_int <= span.last, networks.c.last_int >= span.first)
                .limit(1)
            ).scalar()
            if network is not None:
                raise Conflict("ip_range", f"{ip_range} overlaps fixed network {network}")
            _register_pool(connection, pool)
            to_text = ipaddress.IPv4Address
            bulk_insert(
                connection,
                "floating_ips",
                ("address", "address_int", "pool", "host", "interface", "auto_assigned"),
                (
                    (str(to_text(value)), value, pool, host, interface, False)
                    for value in span.addresses()
                ),
            )
            audit.target = str(span)
            audit.after = {"pool": pool, "host": host, "interface": interface, "count": len(span)}
            audit.floating = True
        return FloatingRangeView(str(span), len(span), pool, host, interface)

    def delete_floating_range(self, ip_range: str) -> FloatingRangeView:
        span = validate.ip_range("ip_range", ip_range)
        with self._change("floating.delete", str(span)) as (connection, audit):
            # The same lock as creating a range: a pool emptied here is not dropped
            # under a range being added to it.
            self.db.advisory_lock(connection, RANGE_LOCK)
            in_range = floating_ips.c.address_int.between(span.first, span.last)
            total, held, pools, hosts, interfaces = connection.execute(
                select(
                    func.count(floating_ips.c.id),
                    func.count(floating_ips.c.project_id),
                    func.count(floating_ips.c.pool.distinct()),
                    func.count(floating_ips.c.host.distinct()),
                    func.count(floating_ips.c.interface.distinct()),
                ).where(in_range)
            ).one()
            if not total:
                raise NotFound("ip_range", f"{ip_range} holds no floating IPs")
            if held:
                first = connection.execute(
                    select(floating_ips.c.address)
                    .where(in_range, floating_ips.c.project_id.is_not(None))
                    .order_by(floating_ips.c.address_int)
                    .limit(1)
                ).scalar_one()
                raise Conflict(
                    "ip_range",
                    f"{held} address(es) in {ip_range} are allocated to projects "
                    f"(first {first}); release them first",
                )
            sample = connection.execute(
                select(floating_ips.c.pool, floating_ips.c.host, floating_ips.c.interface)
                .where(in_range)
                .limit(1)
            ).one()
            pools_in_range = select(floating_ips.c.pool).where(in_range).distinct()
            emptied = list(connection.execute(pools_in_range).scalars())
            connection.execute(delete(floating_ips).where(in_range))
            _drop_empty_pools(connection, emptied)
            audit.target = str(span)
            audit.before = {"count": total}
            audit.floating = True
        return FloatingRangeView(
            str(span),
            int(total),
            sample.pool if pools == 1 else None,
            sample.host if hosts == 1 else None,
            sample.interface if interfaces == 1 else None,
        )

    def list_floating_ips(
        self, host: str | None = None, project: str | None = None, pool: str | None = None
    ) -> list[FloatingIPView]:
        with self.db.read() as connection:
            return _floating_views(
                connection, *self._floating_filter(connection, host, project, pool)
            )

    def floating_ips_json(
        self,
        fields: Sequence[str],
        host: str | None = None,
        project: str | None = None,
        pool: str | None = None,
    ) -> str:
        """``list_floating_ips`` as a JSON array of objects with ``fields`` (names of
        FloatingIPView's fields), written by the database itself."""
        with self.db.read() as connection:
            where = self._floating_filter(connection, host, project, pool)
            return json_array(connection, _floating_query(*where), fields)

    def _floating_filter(
        self, connection: Connection, host: str | None, project: str | None, pool: str | None
    ) -> list[Any]:
        where = []
        if host is not None:
            where.append(floating_ips.c.host == validate.host_name("host", host))
        if pool is not None:
            where.append(floating_ips.c.pool == validate.name("pool", pool))
        if project is not None:
            owner = self._project(connection, project)
            where.append(floating_ips.c.project_id == owner.id)
        return where

    def get_floating_ip(self, address: str) -> FloatingIPView:
        with self.db.read() as connection:
            floating = self._floating(connection, address)
            return _floating_views(connection, floating_ips.c.id == floating.id)[0]

    def allocate_floating_ip(self, project: str, pool: str | None = None) -> FloatingIPView:
        pool = validate.name(
            "pool", pool if pool is not None else self.settings.default_floating_pool
        )
        with self._change("floating.allocate", project) as (connection, audit):
            owner = self._project(connection, project, lock=True)
            quota = self.settings.quota_floating_ips
            if quota >= 0:
                held = connection.execute(
                    select(func.count(floating_ips.c.id)).where(
                        floating_ips.c.project_id == owner.id,
                        floating_ips.c.auto_assigned.is_(False),
                    )
                ).scalar()
                if (held or 0) >= quota:
                    raise QuotaExceeded(
                        f"project {owner.name}: floating IP quota of {quota} reached "
                        "(quota_floating_ips)"
                    )
            chosen = connection.execute(
                select(floating_ips.c.id, floating_ips.c.address)
                .where(floating_ips.c.pool == pool, floating_ips.c.project_id.is_(None))
                .order_by(floating_ips.c.address_int)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if chosen is None:
                if not connection.execute(
                    select(floating_ips.c.id).where(floating_ips.c.pool == pool).limit(1)
                ).first():
                    raise NotFound("pool", f"no floating IP pool named {pool!r}")
                raise NoMoreFloatingIps(pool)
            connection.execute(
                update(floating_ips)
                .where(floating_ips.c.id == chosen.id)
                .values(project_id=owner.id)
            )
            audit.target = chosen.address
            audit.after = {"project": owner.name, "pool": pool}
            return _floating_views(connection, floating_ips.c.id == chosen.id)[0]

    def associate_floating_ip(
        self,
        address: str,
        instance: str,
        fixed_address: str | None = None,
        *,
        move: bool = True,
    ) -> FloatingIPView:
        """NAT ``address`` to ``instance``. An address associated elsewhere moves, in this
        one transaction (its old NAT pair and tracked connections go when the host applies
        it, as on any move), unless ``move`` is False, which refuses instead."""
        with self._change("floating.associate", address) as (connection, audit):
            floating = self._floating(connection, address, lock=True)
            target = self._instance(connection, instance)
            (current,) = _floating_views(connection, floating_ips.c.id == floating.id)
            if floating.project_id is None:
                raise Conflict(
                    "address",
                    f"{floating.address} is not allocated to a project; allocate it first",
                )
            if floating.project_id != target.project_id:
                target_project = connection.execute(
                    select(projects.c.name).where(projects.c.id == target.project_id)
                ).scalar_one()
                raise Conflict(
                    "instance",
                    f"{target.name} is in project {target_project}, but {floating.address} "
                    f"belongs to {current.project}",
                )
            fixed = self._pick_fixed(connection, target, fixed_address)
            if floating.fixed_ip_id == fixed.id:
                raise Conflict(
                    "address",
                    f"{floating.address} is already associated with {current.instance} "
                    f"({current.fixed_address})",
                )
            if floating.fixed_ip_id is not None and not move:
                raise Conflict(
                    "address",
                    f"{floating.address} is associated with {current.instance} "
                    f"({current.fixed_address}); not moved to {target.name} (--no-move)",
                )
            taken = connection.execute(
                select(floating_ips.c.address).where(floating_ips.c.fixed_ip_id == fixed.id)
            ).scalar()
            if taken is not None:
                raise Conflict(
                    "instance", f"{fixed.address} of {target.name} already has floating IP {taken}"
                )
            if floating.fixed_ip_id is not None:
                # A move: the host that NATs it now hears of it too (the hosts differ
                # only on a multi-host network).
                audit.before = {"instance": current.instance, "fixed": current.fixed_address}
                audit.hosts.add(floating.host)
            values: dict[str, Any] = {"fixed_ip_id": fixed.id}
            network = connection.execute(
                select(networks.c.multi_host).where(networks.c.id == fixed.network_id)
            ).one()
            if network.multi_host and target.host is not None and target.host != floating.host:
                # A multi-host network's floating IPs are NATed where the instance runs.
                values["host"] = target.host
                audit.hosts.update({floating.host, target.host})
            connection.execute(
                update(floating_ips).where(floating_ips.c.id == floating.id).values(**values)
            )
            audit.target = floating.address
            audit.after = {"instance": target.name, "fixed": fixed.address}
            # The address and its NAT pair are all that change, on the floating IP's host:
            # the network stays as it is, so the change does not name it (a named network
            # would bring its bridge, DHCP and filter into the apply, and every host with
            # instances on it into the change).
            audit.floating_addresses.add(floating.address)
            return _floating_views(connection, floating_ips.c.id == floating.id)[0]

    def _pick_fixed(
        self, connection: Connection, target: Row[Any], fixed_address: str | None
    ) -> Row[Any]:
        addresses = connection.execute(
            select(fixed_ips)
            .where(fixed_ips.c.instance_id == target.id)
            .order_by(fixed_ips.c.address_int)
        ).all()
        if fixed_address is not None:
            wanted = str(validate.ipv4_address("fixed_address", fixed_address))
            for fixed in addresses:
                if fixed.address == wanted:
                    return fixed
            raise NotFound("fixed_address", f"{wanted} is not an address of {target.name}")
        if not addresses:
            raise Conflict("instance", f"{target.name} has no fixed IP")
        return addresses[0]

    def disassociate_floating_ip(self, address: str) -> FloatingIPView:
        with self._change("floating.disassociate", address) as (connection, audit):
            floating = self._floating(connection, address, lock=True)
            if floating.fixed_ip_id is None:
                raise Conflict("address", f"{floating.address} is not associated")
            (before,) = _floating_views(connection, floating_ips.c.id == floating.id)
            audit.before = {"instance": before.instance, "fixed": before.fixed_address}
            connection.execute(
                update(floating_ips)
                .where(floating_ips.c.id == floating.id)
                .values(fixed_ip_id=None)
            )
            audit.target = floating.address
            audit.floating_addresses.add(floating.address)
            return _floating_views(connection, floating_ips.c.id == floating.id)[0]

    def release_floating_ip(self, address: str) -> FloatingIPView:
        with self._change("floating.release", address) as (connection, audit):
            floating = self._floating(connection, address, lock=True)
            if floating.project_id is None:
                raise Conflict("address", f"{floating.address} is not allocated")
            if floating.fixed_ip_id is not None:
                raise Conflict(
                    "address", f"{floating.address} is associated; disassociate it first"
                )
            (before,) = _floating_views(connection, floating_ips.c.id == floating.id)
            audit.before = {"project": before.project}
            connection.execute(
                update(floating_ips)
                .where(floating_ips.c.id == floating.id)
                .values(project_id=None, auto_assigned=False)
            )
            audit.target = floating.address
            return _floating_views(connection, floating_ips.c.id == floating.id)[0]

    def _floating(self, connection: Connection, address: str, *, lock: bool = False) -> Row[Any]:
        text = str(validate.ipv4_address("address", address))
        query = select(floating_ips).where(floating_ips.c.address == text)
        if lock:
            query = query.with_for_update()
        floating = connection.execute(query).first()
        if floating is None:
            raise NotFound("address", f"{text} is not a floating IP")
        return floating


def _floating_query(*where: Any) -> Select[Any]:
    """Floating IPs in address order, labelled as FloatingIPView's fields."""
    return (
        select(
            floating_ips.c.id,
            floating_ips.c.address,
            floating_ips.c.pool,
            floating_ips.c.host,
            floating_ips.c.interface,
            projects.c.name.label("project"),
            instances.c.name.label("instance"),
            fixed_ips.c.address.label("fixed_address"),
            floating_ips.c.auto_assigned,
        )
        .select_from(floating_ips)
        .outerjoin(projects, floating_ips.c.project_id == projects.c.id)
        .outerjoin(fixed_ips, floating_ips.c.fixed_ip_id == fixed_ips.c.id)
        .outerjoin(instances, fixed_ips.c.instance_id == instances.c.id)
        .where(*where)
        .order_by(floating_ips.c.address_int)
    )


def _floating_views(connection: Connection, *where: Any) -> list[FloatingIPView]:
    return list(map(FloatingIPView._make, connection.execute(_floating_query(*where))))


def _register_pool(connection: Connection, pool: str) -> None:
    """Make ``pool`` a pool, unless it is one; a pool named the same in another case is
    refused (names ignore case)."""
    exists = refuse_taken(
        connection, floating_pools.c.name, pool, field="pool", taken=None, what="floating IP pool"
    )
    if not exists:
        connection.execute(insert(floating_pools).values(name=pool))


def _drop_empty_pools(connection: Connection, pools: list[str]) -> None:
    """A pool is there while it holds addresses."""
    if not pools:
        return
    connection.execute(
        delete(floating_pools).where(
            floating_pools.c.name.in_(pools),
            ~select(floating_ips.c.id).where(floating_ips.c.pool == floating_pools.c.name).exists(),
        )
    )
