"""`network create/list/show/delete` and the fixed IPs of each network."""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select
from sqlalchemy.orm import Session, aliased

from core import validate
from core.errors import Conflict, InvalidInput
from core.managers import manager as get_manager
from core.managers.base import SubnetPlan
from core.managers.vlan import VlanManager
from core.service.base import ServiceBase
from core.store.models import FixedIP, FloatingIP, Instance, Network, Project
from core.views import FixedIPView, NetworkView, Page

# Keys for PostgreSQL advisory locks: creating ranges checks overlaps against rows that
# a concurrent creator has not committed yet, so creators take turns.
RANGE_LOCK = 0x6E6574636F6E

MAX_VXLAN_ID = 16_777_215


class NetworkService(ServiceBase):
    def create_networks(
        self,
        fixed_range: str | None = None,
        num_networks: int | str | None = None,
        network_size: int | str | None = None,
        vlan_start: int | str | None = None,
        vpn_start: int | str | None = None,
        *,
        label: str | None = None,
        manager: str | None = None,
        bridge: str | None = None,
        bridge_interface: str | None = None,
        dns: str | None = None,
        segmentation: str | None = None,
    ) -> list[NetworkView]:
        s = self.settings
        mgr = get_manager(manager if manager is not None else "vlan")
        cidr = validate.ipv4_network(
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
        if label is not None:
            validate.name("label", label)
        dns_text = str(validate.ipv4_address("dns", dns)) if dns is not None else None
        if bridge_interface is not None:
            validate.ifname("bridge_interface", bridge_interface)
        is_vlan = isinstance(mgr, VlanManager)
        if is_vlan:
            if bridge is not None:
                raise InvalidInput("bridge", "VLAN networks name their bridge br<vlan>; omit it")
            seg = segmentation if segmentation is not None else s.segmentation
            if seg not in ("vlan", "vxlan"):
                raise InvalidInput("segmentation", f"{seg!r} must be vlan or vxlan")
        else:
            if segmentation is not None:
                raise InvalidInput(
                    "segmentation", f"only VLAN networks are segmented, not {mgr.kind}"
                )
            if vlan_start is not None or vpn_start is not None:
                field = "vlan_start" if vlan_start is not None else "vpn_start"
                raise InvalidInput(field, f"only VLAN networks have one, not {mgr.kind}")
            if count != 1:
                raise InvalidInput("num_networks", f"a {mgr.kind} network is created one at a time")
            bridge = validate.ifname(
                "bridge", bridge if bridge is not None else s.flat_network_bridge
            )
            seg = None
            if dns_text is None and s.flat_network_dns:
                dns_text = s.flat_network_dns
        prefix = 32 - (size.bit_length() - 1)

        with self._change("network.create", str(cidr)) as (session, audit):
            self.db.advisory_lock(session, RANGE_LOCK)
            subnets = self._free_subnets(session, cidr, prefix, count)
            if is_vlan:
                assert seg is not None
                vlans = self._segment_ids(session, vlan_start, count, seg)
                ports = self._vpn_ports(session, vpn_start, count)
                plans = [
                    SubnetPlan(
                        subnet=subnet,
                        label=_label(label, "vlan", vlan, count, index),
                        bridge=f"br{vlan}",
                        vlan=vlan,
                        vpn_public_port=port,
                    )
                    for index, (subnet, vlan, port) in enumerate(
                        zip(subnets, vlans, ports, strict=True)
                    )
                ]
            else:
                assert bridge is not None
                plans = [SubnetPlan(subnet=subnets[0], label=label or mgr.kind, bridge=bridge)]
            for plan in plans:
                self._check_bridge_free(session, plan.bridge)
            rows = [
                mgr.network_row(
                    plan,
                    dns=dns_text,
                    bridge_interface=bridge_interface,
                    segmentation=seg,
                    vpn_public_address=s.vpn_ip if is_vlan else None,
                    created_at=self.clock(),
                )
                for plan in plans
            ]
            session.add_all(rows)
            session.flush()
            for row in rows:
                mgr.insert_fixed_ips(session, row, s.cnt_vpn_clients)
            audit.target = f"{len(rows)} {mgr.kind} network(s) in {cidr}"
            audit.after = [row.cidr for row in rows]
            audit.network_ids.update(row.id for row in rows)
            made = {row.id for row in rows}
        return [v for v in self.list_networks() if v.id in made]

    def _free_subnets(
        self, session: Session, cidr: ipaddress.IPv4Network, prefix: int, count: int
    ) -> list[ipaddress.IPv4Network]:
        """The first ``count`` subnets of ``cidr`` that overlap nothing netcon has.

        As nova-network did, a subnet already in use is skipped for the next free one.
        """
        lo, hi = int(cidr.network_address), int(cidr.broadcast_address)
        taken = sorted(
            (int(first), int(last))
            for first, last in session.execute(
                select(Network.first_int, Network.last_int).where(
                    Network.first_int <= hi, Network.last_int >= lo
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
            floating = session.scalars(
                select(FloatingIP.address)
                .where(FloatingIP.address_int.between(start, end))
                .limit(1)
            ).first()
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

    def _segment_ids(
        self, session: Session, start: int | str | None, count: int, segmentation: str
    ) -> list[int]:
        ceiling = VlanManager.max_vlan_id if segmentation == "vlan" else MAX_VXLAN_ID
        used = set(session.scalars(select(Network.vlan).where(Network.vlan.is_not(None))))
        if start is not None:
            first = validate.integer("vlan_start", start, 1, ceiling)
            wanted = list(range(first, first + count))
            if wanted[-1] > ceiling:
                raise InvalidInput(
                    "vlan_start", f"{count} networks from {first} pass the last id {ceiling}"
                )
            for vlan in wanted:
                if vlan in used:
                    holder = session.scalars(select(Network.cidr).where(Network.vlan == vlan)).one()
                    raise Conflict("vlan_start", f"VLAN {vlan} is taken by network {holder}")
            return wanted
        # Not given: count up from the configured start, skipping ids already taken.
        free = (v for v in range(self.settings.vlan_start, ceiling + 1) if v not in used)
        result = [v for _, v in zip(range(count), free, strict=False)]
        if len(result) < count:
            raise Conflict("vlan_start", f"only {len(result)} segment ids are left below {ceiling}")
        return result

    def _vpn_ports(self, session: Session, start: int | str | None, count: int) -> list[int]:
        used = set(
            session.scalars(
                select(Network.vpn_public_port).where(Network.vpn_public_port.is_not(None))
            )
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
        free = (p for p in range(self.settings.vpn_start, 65536) if p not in used)
        result = [p for _, p in zip(range(count), free, strict=False)]
        if len(result) < count:
            raise Conflict("vpn_start", "no VPN ports are left below 65535")
        return result

    def _check_bridge_free(self, session: Session, bridge: str) -> None:
        holder = session.execute(
            select(Network.cidr, Network.manager).where(Network.bridge == bridge)
        ).first()
        if holder is not None:
            raise Conflict("bridge", f"{bridge} already carries {holder[1]} network {holder[0]}")

    # -- reading -------------------------------------------------------------------

    def list_networks(self, project: str | None = None) -> list[NetworkView]:
        with self.db.read() as session:
            query = select(Network).order_by(Network.first_int)
            if project is not None:
                query = query.where(Network.project_id == self._project(session, project).id)
            networks = list(session.scalars(query))
            counts = _address_counts(session, [n.id for n in networks])
            return [_network_view(n, counts.get(n.id, (0, 0, 0))) for n in networks]

    def get_network(self, ref: str | int) -> NetworkView:
        with self.db.read() as session:
            network = self._network(session, ref)
            counts = _address_counts(session, [network.id])
            return _network_view(network, counts.get(network.id, (0, 0, 0)))

    def delete_network(self, ref: str | int) -> NetworkView:
        with self._change("network.delete", str(ref)) as (session, audit):
            network = self._network(session, ref)
            view = _network_view(network, _address_counts(session, [network.id])[network.id])
            in_use = session.scalar(
                select(func.count(FixedIP.id)).where(
                    FixedIP.network_id == network.id,
                    or_(FixedIP.instance_id.is_not(None), FixedIP.leased.is_(True)),
                )
            )
            if in_use:
                raise Conflict(
                    "network",
                    f"{network.cidr} has {in_use} address(es) in use by instances or DHCP "
                    "leases; terminate them first",
                )
            # No ORM bookkeeping of the deleted rows: a /16 is 65,536 of them.
            session.execute(
                delete(FixedIP)
                .where(FixedIP.network_id == network.id)
                .execution_options(synchronize_session=False)
            )
            session.delete(network)
            audit.target = network.cidr
            audit.before = view.to_dict()
            audit.network_ids.add(network.id)
        return view

    def list_fixed_ips(
        self,
        network: str | int | None = None,
        project: str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        *,
        regex: bool = False,
        negate: bool = False,
    ) -> Page[FixedIPView]:
        """A window of fixed IPs in address order.

        ``search`` matches any of the columns a listing shows (address, state, instance,
        MAC, network), case-insensitively: as a substring, or as a regular expression
        with ``regex``; ``negate`` keeps the rows that do not match instead.
        """
        if search and regex:
            try:
                re.compile(search)
            except re.error as exc:
                raise InvalidInput("search", f"is not a regular expression ({exc})") from None
        with self.db.read() as session:
            owner = aliased(Project)
            query = (
                select(FixedIP, Network.cidr, Instance.name, Project.name, owner.name)
                .join(Network, FixedIP.network_id == Network.id)
                .outerjoin(Instance, FixedIP.instance_id == Instance.id)
                .outerjoin(Project, Instance.project_id == Project.id)
                .outerjoin(owner, Network.project_id == owner.id)
            )
            if network is not None:
                query = query.where(FixedIP.network_id == self._network(session, network).id)
            if project is not None:
                project_id = self._project(session, project).id
                query = query.where(
                    or_(Instance.project_id == project_id, Network.project_id == project_id)
                )
            if search:
                matches = or_(
                    *(
                        _matches(column, search, regex, self.db.dialect)
                        for column in (
                            FixedIP.address,
                            _FIXED_STATE,
                            func.coalesce(Instance.name, "-"),
                            func.coalesce(FixedIP.mac, "-"),
                            Network.cidr,
                        )
                    )
                )
                query = query.where(~matches if negate else matches)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            query = query.order_by(FixedIP.address_int).offset(max(0, offset))
            if limit is not None:
                query = query.limit(max(0, limit))
            rows = tuple(
                FixedIPView(
                    id=fixed.id,
                    address=fixed.address,
                    network=cidr,
                    network_id=fixed.network_id,
                    instance=instance_name,
                    project=project_name or owner_name,
                    mac=fixed.mac,
                    reserved=fixed.reserved,
                    allocated=fixed.allocated,
                    leased=fixed.leased,
                )
                for fixed, cidr, instance_name, project_name, owner_name in session.execute(query)
            )
            return Page(rows=rows, total=total, offset=offset)

    def reserve_fixed_ip(self, address: str) -> None:
        with self._change("fixed.reserve", address) as (session, audit):
            fixed = self._fixed_ip(session, address)
            if fixed.reserved:
                raise Conflict("address", f"{fixed.address} is already reserved")
            if fixed.instance_id is not None or fixed.leased:
                raise Conflict("address", f"{fixed.address} is in use; release it first")
            fixed.reserved = True
            audit.target = fixed.address
            audit.after = {"reserved": True}
            audit.network_ids.add(fixed.network_id)

    def unreserve_fixed_ip(self, address: str) -> None:
        with self._change("fixed.unreserve", address) as (session, audit):
            fixed = self._fixed_ip(session, address)
            if not fixed.reserved:
                raise Conflict("address", f"{fixed.address} is not reserved")
            network = fixed.network
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
            fixed.reserved = False
            audit.target = fixed.address
            audit.after = {"reserved": False}
            audit.network_ids.add(fixed.network_id)


# The state a listing shows for a fixed IP (FixedIPView.state), computed in the query so
# that a search can match it.
_FIXED_STATE = case(
    (FixedIP.reserved.is_(True), "reserved"),
    (and_(FixedIP.allocated.is_(True), FixedIP.leased.is_(True)), "leased"),
    (FixedIP.allocated.is_(True), "allocated"),
    (FixedIP.leased.is_(True), "releasing"),
    else_="free",
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


def _label(label: str | None, kind: str, vlan: int, count: int, index: int) -> str:
    if label is None:
        return f"{kind}{vlan}"
    return label if count == 1 else f"{label}_{index}"


def _address_counts(session: Session, ids: Iterable[int]) -> dict[int, tuple[int, int, int]]:
    """Per network: (all addresses, reserved, in use by an instance or a lease)."""
    wanted = list(ids)
    if not wanted:
        return {}
    in_use = or_(FixedIP.instance_id.is_not(None), FixedIP.leased.is_(True))
    query = (
        select(
            FixedIP.network_id,
            func.count(FixedIP.id),
            func.sum(case((FixedIP.reserved.is_(True), 1), else_=0)),
            func.sum(case((in_use, 1), else_=0)),
        )
        .where(FixedIP.network_id.in_(wanted))
        .group_by(FixedIP.network_id)
    )
    return {
        network_id: (int(total), int(reserved or 0), int(used or 0))
        for network_id, total, reserved, used in session.execute(query)
    }


def _network_view(network: Network, counts: tuple[int, int, int]) -> NetworkView:
    total, reserved, used = counts
    return NetworkView(
        id=network.id,
        label=network.label,
        manager=network.manager,
        cidr=network.cidr,
        netmask=network.netmask,
        gateway=network.gateway,
        broadcast=network.broadcast,
        dhcp_start=network.dhcp_start,
        dns1=network.dns1,
        dns2=network.dns2,
        bridge=network.bridge,
        bridge_interface=network.bridge_interface,
        segmentation=network.segmentation,
        vlan=network.vlan,
        project=network.project.name if network.project is not None else None,
        host=network.host,
        vpn_public_address=network.vpn_public_address,
        vpn_public_port=network.vpn_public_port,
        vpn_private_address=network.vpn_private_address,
        size=total,
        used=used,
        reserved=reserved,
        free=total - reserved - used,
    )
