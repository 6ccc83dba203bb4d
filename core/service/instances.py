"""Projects and instances: launching allocates a fixed IP (and, under VLAN, a network)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

import core.service.hostgateways as hostgateways
from core import validate
from core.errors import Conflict, InvalidInput, NoMoreFixedIps, NotFound, QuotaExceeded
from core.managers.base import NetworkManager, random_mac
from core.managers.capabilities import capabilities, kinds
from core.managers.flat import injected_config
from core.managers.registry import MANAGERS
from core.managers.registry import manager as get_manager
from core.service.names import refuse_taken
from core.service.part import Part
from core.service.secgroups import add_default_group
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
from core.views import AddressView, InstanceDetail, InstanceView, ProjectView

MAC_ATTEMPTS = 5


class InstancesPart(Part):
    # -- projects ------------------------------------------------------------------

    def create_project(self, name: str, manager: str | None = None) -> ProjectView:
        validate.name("project", name)
        kind = get_manager(manager if manager is not None else self.settings.network_manager).kind
        with self._change("project.create", name) as (connection, audit):
            refuse_taken(
                connection,
                projects.c.name,
                name,
                field="project",
                taken=f"{name!r} already exists",
                what="project",
            )
            (project_id,) = connection.execute(
                insert(projects).values(name=name, manager=kind, created_at=self.clock())
            ).inserted_primary_key  # type: ignore[misc]
            add_default_group(connection, project_id)
            audit.after = {"name": name, "manager": kind}
            return _project_views(connection, projects.c.id == project_id)[0]

    def launch_obstacle(self, project: str) -> str | None:
        """Why a first instance of ``project`` could not be launched now, or None.

        A newcomer who creates a project before any VLAN network exists (the default
        manager) would otherwise find out only at the first launch.
        """
        with self.db.read() as connection:
            owner = self._project(connection, project)
            if not capabilities(owner.manager).isolates:
                return None
            return _missing_vlan_networks(connection, owner.name)

    def list_projects(self) -> list[ProjectView]:
        with self.db.read() as connection:
            return _project_views(connection)

    def delete_project(self, name: str) -> ProjectView:
        with self._change("project.delete", name) as (connection, audit):
            project = self._project(connection, name, lock=True)
            (view,) = _project_views(connection, projects.c.id == project.id)
            if view.instances:
                raise Conflict("project", f"{name} still has {view.instances} instance(s)")
            if view.floating_ips:
                raise Conflict("project", f"{name} still holds {view.floating_ips} floating IP(s)")
            # The VLAN network goes back to the pool for the next project, without this
            # project's VPN: the next owner starts its own.
            released = connection.execute(
                update(networks)
                .where(networks.c.project_id == project.id)
                .values(project_id=None, vpn_enabled=False)
                .returning(networks.c.id)
            ).scalars()
            audit.network_ids.update(released)
            connection.execute(
                delete(security_groups).where(security_groups.c.project_id == project.id)
            )
            connection.execute(delete(projects).where(projects.c.id == project.id))
            audit.before = {"name": name, "manager": project.manager}
        return view

    # -- instances -----------------------------------------------------------------

    def launch_instance(
        self,
        project: str,
        name: str,
        security_groups: Iterable[str] = (),
        *,
        host: str | None = None,
        user_data: bytes | None = None,
        key: str | None = None,
    ) -> InstanceView:
        """Launch ``name`` in ``project``: an address from the project's network (under
        VLAN, the network itself on the first launch). ``host`` places it on a compute
        host; by default it runs on its network's host. ``user_data`` and the project's
        key ``key`` are what the metadata service hands it."""
        validate.hostname("name", name)
        if host is not None:
            validate.host_name("host", host)
        if user_data is not None:
            validate.user_data("user_data", user_data)
        if key is not None:
            validate.name("key", key)
        groups = list(security_groups) or ["default"]
        for group in groups:
            validate.name("security_group", group)
        with self._change("instance.launch", name) as (connection, audit):
            # The project's row lock makes concurrent first launches take turns, so a
            # project never ends up with two VLAN networks.
            owner = self._project(connection, project, lock=True)
            twin = connection.execute(
                select(instances.c.name).where(func.lower(instances.c.name) == name.lower())
            ).scalar()
            if twin == name:
                raise Conflict("name", f"an instance named {name!r} already exists")
            if twin is not None:
                raise Conflict(
                    "name", f"{name!r} is the DHCP and DNS name of {twin!r} (names ignore case)"
                )
            member_of = self._groups(connection, owner, groups)
            self._check_fixed_quota(connection, owner)
            mgr = MANAGERS[owner.manager]
            if mgr.capabilities.isolates:
                missing = _missing_vlan_networks(connection, owner.name)
                if missing is not None:
                    raise Conflict("project", missing)
            candidates = mgr.networks_for(connection, owner)
            if not candidates:
                raise Conflict(
                    "project",
                    f"{owner.name} uses the {owner.manager} manager but there is no "
                    f"{owner.manager} network; create one with "
                    f"'netcon network create --manager {owner.manager}'",
                )
            key_id = None
            if key is not None:
                key_id = connection.execute(
                    select(keys.c.id).where(keys.c.project_id == owner.id, keys.c.name == key)
                ).scalar()
                if key_id is None:
                    raise NotFound("key", f"{owner.name} has no key named {key!r}")
            (instance_id,) = connection.execute(
                insert(instances).values(
                    name=name,
                    project_id=owner.id,
                    created_at=self.clock(),
                    user_data=user_data,
                    key_id=key_id,
                )
            ).inserted_primary_key  # type: ignore[misc]
            connection.execute(
                insert(instance_security_groups),
                [{"instance_id": instance_id, "security_group_id": g} for g in member_of],
            )
            if host is not None:
                self._check_known_host(connection, host)
            fixed = self._allocate(connection, mgr, candidates, instance_id)
            network = next(n for n in candidates if n.id == fixed.network_id)
            network_host = network.host
            if network_host is None:
                network_host = self._pick_host(connection)
                connection.execute(
                    update(networks).where(networks.c.id == network.id).values(host=network_host)
                )
            placed = host or network_host
            if network.multi_host:
                hostgateways.reserve_for(connection, network, placed)
            connection.execute(
                update(instances).where(instances.c.id == instance_id).values(host=placed)
            )
            audit.after = {"project": owner.name, "address": fixed.address, "mac": fixed.mac}
            audit.network_ids.add(fixed.network_id)
            audit.filter_ports.add((fixed.mac, fixed.address))
            audit.filter_groups.update(member_of)
            return _instance_views(connection, instances.c.id == instance_id)[0]

    def _check_known_host(self, connection: Connection, host: str) -> None:
        known = connection.execute(select(hosts.c.name).where(hosts.c.name == host)).first()
        if known is None:
            raise NotFound(
                "host", f"no host named {host!r} has registered (its agent registers it)"
            )

    def _groups(self, connection: Connection, owner: Row[Any], names: list[str]) -> list[int]:
        """The ids of the project's groups ``names`` (its default group made if missing)."""
        found = dict(
            connection.execute(
                select(security_groups.c.name, security_groups.c.id).where(
                    security_groups.c.project_id == owner.id, security_groups.c.name.in_(names)
                )
            ).all()
        )
        if "default" in names and "default" not in found:
            found["default"] = add_default_group(connection, owner.id)
        missing = [n for n in names if n not in found]
        if missing:
            raise InvalidInput(
                "security_group", f"{owner.name} has no security group named {missing[0]!r}"
            )
        return [found[n] for n in dict.fromkeys(names)]

    def _check_fixed_quota(self, connection: Connection, owner: Row[Any]) -> None:
        quota = self.settings.quota_fixed_ips
        if quota < 0:
            return
        used = connection.execute(
            select(func.count(fixed_ips.c.id))
            .join(instances, fixed_ips.c.instance_id == instances.c.id)
            .where(instances.c.project_id == owner.id)
        ).scalar()
        if (used or 0) >= quota:
            raise QuotaExceeded(
                f"project {owner.name}: fixed IP quota of {quota} reached (quota_fixed_ips)"
            )

    def _allocate(
        self,
        connection: Connection,
        mgr: NetworkManager,
        candidates: Sequence[Row[Any]],
        instance_id: int,
    ) -> Row[Any]:
        """An address from the first of ``candidates`` that has one free."""
        mac = self._unique_mac(connection)
        timeout = self.settings.fixed_ip_disassociate_timeout
        for network in candidates[:-1]:
            with contextlib.suppress(NoMoreFixedIps):
                return mgr.allocate_fixed_ip(
                    connection, network, instance_id, mac, self.clock(), timeout
                )
        # The last network's exhaustion is the error the admin sees.
        return mgr.allocate_fixed_ip(
            connection, candidates[-1], instance_id, mac, self.clock(), timeout
        )

    def _unique_mac(self, connection: Connection) -> str:
        for _ in range(MAC_ATTEMPTS):
            mac = random_mac(self.rng)
            taken = connection.execute(select(fixed_ips.c.id).where(fixed_ips.c.mac == mac))
            if taken.first() is None:
                return mac
        raise Conflict("mac", f"no unused MAC address after {MAC_ATTEMPTS} attempts")

    def terminate_instance(self, name: str) -> InstanceView:
        with self._change("instance.terminate", name) as (connection, audit):
            instance = self._instance(connection, name)
            (view,) = _instance_views(connection, instances.c.id == instance.id)
            held = connection.execute(
                select(fixed_ips, networks.c.manager)
                .join(networks, fixed_ips.c.network_id == networks.c.id)
                .where(fixed_ips.c.instance_id == instance.id)
            ).all()
            audit.hosts.update(h for h in (instance.host,) if h is not None)
            audit.filter_ports.update((f.mac, f.address) for f in held if f.mac is not None)
            # Its member sets lose it: they are named with its ports.
            audit.filter_groups.update(
                connection.execute(
                    select(instance_security_groups.c.security_group_id).where(
                        instance_security_groups.c.instance_id == instance.id
                    )
                ).scalars()
            )
            for fixed in held:
                # The floating IP stays with the project; only its NAT goes.
                moved = connection.execute(
                    update(floating_ips)
                    .where(floating_ips.c.fixed_ip_id == fixed.id)
                    .values(fixed_ip_id=None)
                    .returning(floating_ips.c.address)
                )
                audit.floating_addresses.update(moved.scalars())
                get_manager(fixed.manager).release_fixed_ip(connection, fixed, self.clock())
                audit.network_ids.add(fixed.network_id)
            audit.before = {"project": view.project, "addresses": [f.address for f in held]}
            connection.execute(delete(instances).where(instances.c.id == instance.id))
        return view

    def list_instances(self, project: str | None = None) -> list[InstanceView]:
        with self.db.read() as connection:
            if project is None:
                return _instance_views(connection)
            owner = self._project(connection, project)
            return _instance_views(connection, instances.c.project_id == owner.id)

    def get_instance(self, name: str) -> InstanceDetail:
        with self.db.read() as connection:
            instance = self._instance(connection, name)
            (view,) = _instance_views(connection, instances.c.id == instance.id)
            injected = None
            for fixed in connection.execute(
                select(fixed_ips).where(fixed_ips.c.instance_id == instance.id)
            ):
                network = connection.execute(
                    select(networks).where(networks.c.id == fixed.network_id)
                ).one()
                if get_manager(network.manager).injects_config:
                    injected = injected_config(network, fixed)
            return InstanceDetail(instance=view, injected=injected)


def _missing_vlan_networks(connection: Connection, project: str) -> str | None:
    """The explanation for a VLAN project in a cloud with no VLAN network at all."""
    if connection.execute(
        select(networks.c.id).where(networks.c.manager.in_(kinds(isolates=True))).limit(1)
    ).first():
        return None
    others = connection.execute(
        select(networks.c.manager, networks.c.cidr).order_by(networks.c.first_int)
    ).all()
    existing = ", ".join(f"{manager} {cidr}" for manager, cidr in others) or "none yet"
    return (
        f"{project} uses the vlan manager, but no VLAN network exists for its instances; "
        "create some ('netcon network create 10.0.0.0/16 4 256'), or make the project with "
        f"--manager flatdhcp or --manager flat (networks: {existing})"
    )


def _project_views(connection: Connection, *where: Any) -> list[ProjectView]:
    instance_counts = (
        select(instances.c.project_id, func.count(instances.c.id).label("n"))
        .group_by(instances.c.project_id)
        .subquery()
    )
    floating_counts = (
        select(floating_ips.c.project_id, func.count(floating_ips.c.id).label("n"))
        .where(floating_ips.c.project_id.is_not(None))
        .group_by(floating_ips.c.project_id)
        .subquery()
    )
    query = (
        select(
            projects.c.id,
            projects.c.name,
            projects.c.manager,
            networks.c.cidr,
            func.coalesce(instance_counts.c.n, 0),
            func.coalesce(floating_counts.c.n, 0),
            projects.c.created_at,
        )
        .outerjoin(networks, networks.c.project_id == projects.c.id)
        .outerjoin(instance_counts, instance_counts.c.project_id == projects.c.id)
        .outerjoin(floating_counts, floating_counts.c.project_id == projects.c.id)
        .where(*where)
        .order_by(projects.c.name)
    )
    return [ProjectView(*row) for row in connection.execute(query)]


def _instance_views(connection: Connection, *where: Any) -> list[InstanceView]:
    rows = connection.execute(
        select(instances, projects.c.name.label("project_name"))
        .join(projects, instances.c.project_id == projects.c.id)
        .where(*where)
        .order_by(instances.c.name)
    ).all()
    ids = [row.id for row in rows]
    addresses: dict[int, list[AddressView]] = {}
    groups: dict[int, list[str]] = {}
    if ids:
        for instance_id, cidr, address, mac, floating, address_v6 in connection.execute(
            select(
                fixed_ips.c.instance_id,
                networks.c.cidr,
                fixed_ips.c.address,
                fixed_ips.c.mac,
                floating_ips.c.address,
                fixed_ips.c.address_v6,
            )
            .join(networks, fixed_ips.c.network_id == networks.c.id)
            .outerjoin(floating_ips, floating_ips.c.fixed_ip_id == fixed_ips.c.id)
            .where(fixed_ips.c.instance_id.in_(ids))
            .order_by(fixed_ips.c.address_int)
        ):
            addresses.setdefault(instance_id, []).append(
                AddressView(
                    network=cidr,
                    address=address,
                    mac=mac or "",
                    floating=floating,
                    address_v6=address_v6,
                )
            )
        for instance_id, group in connection.execute(
            select(instance_security_groups.c.instance_id, security_groups.c.name)
            .join(
                security_groups,
                instance_security_groups.c.security_group_id == security_groups.c.id,
            )
            .where(instance_security_groups.c.instance_id.in_(ids))
            .order_by(security_groups.c.name)
        ):
            groups.setdefault(instance_id, []).append(group)
    return [
        InstanceView(
            id=row.id,
            name=row.name,
            project=row.project_name,
            host=row.host,
            addresses=tuple(addresses.get(row.id, ())),
            security_groups=tuple(groups.get(row.id, ())),
            created_at=row.created_at,
        )
        for row in rows
    ]
