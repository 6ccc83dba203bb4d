"""Floating IPs: an admin's pool, allocated to projects, associated with instances."""

from __future__ import annotations

import ipaddress

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import validate
from core.errors import Conflict, NoMoreFloatingIps, NotFound, QuotaExceeded
from core.service.base import ServiceBase
from core.service.networks import RANGE_LOCK
from core.store.db import bulk_insert
from core.store.models import FixedIP, FloatingIP, Instance, Network, Project
from core.views import FloatingIPView


class FloatingService(ServiceBase):
    def create_floating_range(
        self, host: str, ip_range: str, pool: str | None = None, interface: str | None = None
    ) -> int:
        """Add every address of ``ip_range`` to ``pool`` on ``host``; returns the count."""
        validate.host_name("host", host)
        span = validate.ip_range("ip_range", ip_range)
        pool = validate.name(
            "pool", pool if pool is not None else self.settings.default_floating_pool
        )
        interface = validate.ifname(
            "interface", interface if interface is not None else self.settings.public_interface
        )
        with self._change("floating.create", str(span)) as (session, audit):
            self.db.advisory_lock(session, RANGE_LOCK)
            clash = session.scalars(
                select(FloatingIP.address)
                .where(FloatingIP.address_int.between(span.first, span.last))
                .order_by(FloatingIP.address_int)
                .limit(1)
            ).first()
            if clash is not None:
                raise Conflict("ip_range", f"{ip_range} overlaps existing floating IP {clash}")
            network = session.scalars(
                select(Network.cidr)
                .where(Network.first_int <= span.last, Network.last_int >= span.first)
                .limit(1)
            ).first()
            if network is not None:
                raise Conflict("ip_range", f"{ip_range} overlaps fixed network {network}")
            to_text = ipaddress.IPv4Address
            bulk_insert(
                session,
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
        return len(span)

    def delete_floating_range(self, ip_range: str) -> int:
        span = validate.ip_range("ip_range", ip_range)
        with self._change("floating.delete", str(span)) as (session, audit):
            in_range = FloatingIP.address_int.between(span.first, span.last)
            total, held = session.execute(
                select(func.count(FloatingIP.id), func.count(FloatingIP.project_id)).where(in_range)
            ).one()
            if not total:
                raise NotFound("ip_range", f"{ip_range} holds no floating IPs")
            if held:
                first = session.scalars(
                    select(FloatingIP.address)
                    .where(in_range, FloatingIP.project_id.is_not(None))
                    .order_by(FloatingIP.address_int)
                    .limit(1)
                ).one()
                raise Conflict(
                    "ip_range",
                    f"{held} address(es) in {ip_range} are allocated to projects "
                    f"(first {first}); release them first",
                )
            # No sync: the ORM would fetch all 65k deleted ids back to match its identity map.
            session.execute(
                delete(FloatingIP).where(in_range).execution_options(synchronize_session=False)
            )
            audit.target = str(span)
            audit.before = {"count": total}
            audit.floating = True
        return int(total)

    def list_floating_ips(
        self, host: str | None = None, project: str | None = None
    ) -> list[FloatingIPView]:
        with self.db.read() as session:
            query = (
                select(FloatingIP, Project.name, FixedIP.address, Instance.name)
                .outerjoin(Project, FloatingIP.project_id == Project.id)
                .outerjoin(FixedIP, FloatingIP.fixed_ip_id == FixedIP.id)
                .outerjoin(Instance, FixedIP.instance_id == Instance.id)
                .order_by(FloatingIP.address_int)
            )
            if host is not None:
                query = query.where(FloatingIP.host == host)
            if project is not None:
                query = query.where(FloatingIP.project_id == self._project(session, project).id)
            return [
                _view(floating, project_name, fixed_address, instance_name)
                for floating, project_name, fixed_address, instance_name in session.execute(query)
            ]

    def get_floating_ip(self, address: str) -> FloatingIPView:
        with self.db.read() as session:
            floating = self._floating(session, address)
            fixed = floating.fixed_ip
            return _view(
                floating,
                floating.project.name if floating.project else None,
                fixed.address if fixed else None,
                fixed.instance.name if fixed and fixed.instance else None,
            )

    def allocate_floating_ip(self, project: str, pool: str | None = None) -> FloatingIPView:
        pool = validate.name(
            "pool", pool if pool is not None else self.settings.default_floating_pool
        )
        with self._change("floating.allocate", project) as (session, audit):
            owner = self._project(session, project, lock=True)
            quota = self.settings.quota_floating_ips
            if quota >= 0:
                held = session.scalar(
                    select(func.count(FloatingIP.id)).where(
                        FloatingIP.project_id == owner.id, FloatingIP.auto_assigned.is_(False)
                    )
                )
                if (held or 0) >= quota:
                    raise QuotaExceeded(
                        f"project {owner.name}: floating IP quota of {quota} reached "
                        "(quota_floating_ips)"
                    )
            floating = session.scalars(
                select(FloatingIP)
                .where(FloatingIP.pool == pool, FloatingIP.project_id.is_(None))
                .order_by(FloatingIP.address_int)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if floating is None:
                raise NoMoreFloatingIps(pool)
            floating.project_id = owner.id
            audit.target = floating.address
            audit.after = {"project": owner.name, "pool": pool}
            address = floating.address
        return self.get_floating_ip(address)

    def associate_floating_ip(
        self, address: str, instance: str, fixed_address: str | None = None
    ) -> FloatingIPView:
        with self._change("floating.associate", address) as (session, audit):
            floating = self._floating(session, address, lock=True)
            target = self._instance(session, instance)
            if floating.project_id is None:
                raise Conflict(
                    "address",
                    f"{floating.address} is not allocated to a project; allocate it first",
                )
            if floating.project_id != target.project_id:
                owner = floating.project.name if floating.project else "?"
                raise Conflict(
                    "instance",
                    f"{target.name} is in project {target.project.name}, but {floating.address} "
                    f"belongs to {owner}",
                )
            if floating.fixed_ip_id is not None:
                current = floating.fixed_ip
                holder = current.instance.name if current and current.instance else "?"
                raise Conflict(
                    "address",
                    f"{floating.address} is already associated with {holder}; "
                    "disassociate it first",
                )
            fixed = self._pick_fixed(target, fixed_address)
            taken = session.scalars(
                select(FloatingIP.address).where(FloatingIP.fixed_ip_id == fixed.id)
            ).first()
            if taken is not None:
                raise Conflict(
                    "instance", f"{fixed.address} of {target.name} already has floating IP {taken}"
                )
            floating.fixed_ip_id = fixed.id
            audit.target = floating.address
            audit.after = {"instance": target.name, "fixed": fixed.address}
            audit.floating = True
            audit.network_ids.add(fixed.network_id)
        return self.get_floating_ip(address)

    def _pick_fixed(self, target: Instance, fixed_address: str | None) -> FixedIP:
        addresses = sorted(target.fixed_ips, key=lambda f: f.address_int)
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
        with self._change("floating.disassociate", address) as (session, audit):
            floating = self._floating(session, address, lock=True)
            if floating.fixed_ip_id is None:
                raise Conflict("address", f"{floating.address} is not associated")
            fixed = floating.fixed_ip
            assert fixed is not None
            audit.before = {
                "instance": fixed.instance.name if fixed.instance else None,
                "fixed": fixed.address,
            }
            audit.network_ids.add(fixed.network_id)
            floating.fixed_ip_id = None
            audit.target = floating.address
            audit.floating = True
        return self.get_floating_ip(address)

    def release_floating_ip(self, address: str) -> None:
        with self._change("floating.release", address) as (session, audit):
            floating = self._floating(session, address, lock=True)
            if floating.project_id is None:
                raise Conflict("address", f"{floating.address} is not allocated")
            if floating.fixed_ip_id is not None:
                raise Conflict(
                    "address", f"{floating.address} is associated; disassociate it first"
                )
            audit.before = {"project": floating.project.name if floating.project else None}
            floating.project_id = None
            floating.auto_assigned = False
            audit.target = floating.address

    def _floating(self, session: Session, address: str, *, lock: bool = False) -> FloatingIP:
        text = str(validate.ipv4_address("address", address))
        query = select(FloatingIP).where(FloatingIP.address == text)
        if lock:
            query = query.with_for_update()
        floating = session.scalars(query).first()
        if floating is None:
            raise NotFound("address", f"{text} is not a floating IP")
        return floating


def _view(
    floating: FloatingIP,
    project: str | None,
    fixed_address: str | None,
    instance: str | None,
) -> FloatingIPView:
    return FloatingIPView(
        id=floating.id,
        address=floating.address,
        pool=floating.pool,
        host=floating.host,
        interface=floating.interface,
        project=project,
        instance=instance,
        fixed_address=fixed_address,
        auto_assigned=floating.auto_assigned,
    )
