"""Projects and instances: launching allocates a fixed IP (and, under VLAN, a network)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core import validate
from core.errors import Conflict, InvalidInput, NoMoreFixedIps, QuotaExceeded
from core.managers import MANAGERS
from core.managers import manager as get_manager
from core.managers.base import NetworkManager, random_mac
from core.managers.flat import injected_config
from core.service.base import ServiceBase
from core.store.models import (
    FixedIP,
    FloatingIP,
    Instance,
    Network,
    Project,
    SecurityGroup,
)
from core.views import AddressView, InstanceDetail, InstanceView, ProjectView

MAC_ATTEMPTS = 5


class InstanceService(ServiceBase):
    # -- projects ------------------------------------------------------------------

    def create_project(self, name: str, manager: str | None = None) -> ProjectView:
        validate.name("project", name)
        kind = get_manager(manager if manager is not None else self.settings.network_manager).kind
        with self._change("project.create", name) as (session, audit):
            if session.scalars(select(Project).where(Project.name == name)).first():
                raise Conflict("project", f"{name!r} already exists")
            project = Project(name=name, manager=kind, created_at=self.clock())
            session.add(project)
            session.flush()
            session.add(SecurityGroup(project_id=project.id, name="default", description="default"))
            audit.after = {"name": name, "manager": kind}
        return next(p for p in self.list_projects() if p.name == name)

    def list_projects(self) -> list[ProjectView]:
        with self.db.read() as session:
            instances = dict(
                session.execute(
                    select(Instance.project_id, func.count(Instance.id)).group_by(
                        Instance.project_id
                    )
                ).all()
            )
            floating = dict(
                session.execute(
                    select(FloatingIP.project_id, func.count(FloatingIP.id))
                    .where(FloatingIP.project_id.is_not(None))
                    .group_by(FloatingIP.project_id)
                ).all()
            )
            networks = dict(
                session.execute(
                    select(Network.project_id, Network.cidr).where(Network.project_id.is_not(None))
                ).all()
            )
            return [
                ProjectView(
                    id=p.id,
                    name=p.name,
                    manager=p.manager,
                    network=networks.get(p.id),
                    instances=instances.get(p.id, 0),
                    floating_ips=floating.get(p.id, 0),
                    created_at=p.created_at,
                )
                for p in session.scalars(select(Project).order_by(Project.name))
            ]

    def delete_project(self, name: str) -> None:
        with self._change("project.delete", name) as (session, audit):
            project = self._project(session, name, lock=True)
            instances = session.scalar(
                select(func.count(Instance.id)).where(Instance.project_id == project.id)
            )
            if instances:
                raise Conflict("project", f"{name} still has {instances} instance(s)")
            floating = session.scalar(
                select(func.count(FloatingIP.id)).where(FloatingIP.project_id == project.id)
            )
            if floating:
                raise Conflict("project", f"{name} still holds {floating} floating IP(s)")
            network = session.scalars(
                select(Network).where(Network.project_id == project.id)
            ).first()
            if network is not None:
                # The VLAN network goes back to the pool for the next project, without
                # this project's VPN: the next owner starts its own.
                network.project_id = None
                network.vpn_enabled = False
                audit.network_ids.add(network.id)
            for group in session.scalars(
                select(SecurityGroup).where(SecurityGroup.project_id == project.id)
            ):
                session.delete(group)
            session.delete(project)
            audit.before = {"name": name, "manager": project.manager}

    # -- instances -----------------------------------------------------------------

    def launch_instance(
        self, project: str, name: str, security_groups: Iterable[str] = ()
    ) -> InstanceView:
        validate.hostname("name", name)
        groups = list(security_groups) or ["default"]
        for group in groups:
            validate.name("security_group", group)
        with self._change("instance.launch", name) as (session, audit):
            # The project's row lock makes concurrent first launches take turns, so a
            # project never ends up with two VLAN networks.
            owner = self._project(session, project, lock=True)
            if session.scalars(select(Instance.id).where(Instance.name == name)).first():
                raise Conflict("name", f"an instance named {name!r} already exists")
            members = self._groups(session, owner, groups)
            self._check_fixed_quota(session, owner)
            mgr = MANAGERS[owner.manager]
            networks = mgr.networks_for(session, owner)
            if not networks:
                raise Conflict(
                    "project",
                    f"{owner.name} uses the {owner.manager} manager but there is no "
                    f"{owner.manager} network; create one with "
                    f"'netcon network create --manager {owner.manager}'",
                )
            instance = Instance(name=name, project_id=owner.id, created_at=self.clock())
            instance.security_groups = members
            session.add(instance)
            session.flush()
            fixed = self._allocate(session, mgr, networks, instance)
            if fixed.network.host is None:
                fixed.network.host = self._pick_host(session)
            instance.host = fixed.network.host
            audit.after = {"project": owner.name, "address": fixed.address, "mac": fixed.mac}
            audit.network_ids.add(fixed.network_id)
        return self.get_instance(name).instance

    def _groups(self, session: Session, owner: Project, names: list[str]) -> list[SecurityGroup]:
        found = {
            g.name: g
            for g in session.scalars(
                select(SecurityGroup).where(
                    SecurityGroup.project_id == owner.id, SecurityGroup.name.in_(names)
                )
            )
        }
        if "default" in names and "default" not in found:
            group = SecurityGroup(project_id=owner.id, name="default", description="default")
            session.add(group)
            found["default"] = group
        missing = [n for n in names if n not in found]
        if missing:
            raise InvalidInput(
                "security_group", f"{owner.name} has no security group named {missing[0]!r}"
            )
        return [found[n] for n in dict.fromkeys(names)]

    def _check_fixed_quota(self, session: Session, owner: Project) -> None:
        quota = self.settings.quota_fixed_ips
        if quota < 0:
            return
        used = session.scalar(
            select(func.count(FixedIP.id))
            .join(Instance, FixedIP.instance_id == Instance.id)
            .where(Instance.project_id == owner.id)
        )
        if (used or 0) >= quota:
            raise QuotaExceeded(
                f"project {owner.name}: fixed IP quota of {quota} reached (quota_fixed_ips)"
            )

    def _allocate(
        self, session: Session, mgr: NetworkManager, networks: list[Network], instance: Instance
    ) -> FixedIP:
        """An address from the first of ``networks`` that has one free."""
        mac = self._unique_mac(session)
        timeout = self.settings.fixed_ip_disassociate_timeout
        for network in networks[:-1]:
            with contextlib.suppress(NoMoreFixedIps):
                return mgr.allocate_fixed_ip(session, network, instance, mac, self.clock(), timeout)
        # The last network's exhaustion is the error the admin sees.
        return mgr.allocate_fixed_ip(session, networks[-1], instance, mac, self.clock(), timeout)

    def _unique_mac(self, session: Session) -> str:
        for _ in range(MAC_ATTEMPTS):
            mac = random_mac(self.rng)
            if session.scalars(select(FixedIP.id).where(FixedIP.mac == mac)).first() is None:
                return mac
        raise Conflict("mac", f"no unused MAC address after {MAC_ATTEMPTS} attempts")

    def terminate_instance(self, name: str) -> None:
        with self._change("instance.terminate", name) as (session, audit):
            instance = self._instance(session, name)
            addresses = []
            for fixed in list(instance.fixed_ips):
                for floating in session.scalars(
                    select(FloatingIP).where(FloatingIP.fixed_ip_id == fixed.id)
                ):
                    # The floating IP stays with the project; only its NAT goes.
                    floating.fixed_ip_id = None
                    audit.floating = True
                addresses.append(fixed.address)
                get_manager(fixed.network.manager).release_fixed_ip(fixed, self.clock())
                audit.network_ids.add(fixed.network_id)
            session.flush()
            audit.before = {"project": instance.project.name, "addresses": addresses}
            session.delete(instance)

    def list_instances(self, project: str | None = None) -> list[InstanceView]:
        with self.db.read() as session:
            query = (
                select(Instance)
                .options(
                    selectinload(Instance.fixed_ips).selectinload(FixedIP.network),
                    selectinload(Instance.security_groups),
                    selectinload(Instance.project),
                )
                .order_by(Instance.name)
            )
            if project is not None:
                query = query.where(Instance.project_id == self._project(session, project).id)
            instances = list(session.scalars(query))
            floating = _floating_by_fixed(session, [f.id for i in instances for f in i.fixed_ips])
            return [_instance_view(i, floating) for i in instances]

    def get_instance(self, name: str) -> InstanceDetail:
        with self.db.read() as session:
            instance = self._instance(session, name)
            floating = _floating_by_fixed(session, [f.id for f in instance.fixed_ips])
            injected = None
            for fixed in instance.fixed_ips:
                if get_manager(fixed.network.manager).injects_config:
                    injected = injected_config(fixed.network, fixed)
            return InstanceDetail(instance=_instance_view(instance, floating), injected=injected)


def _floating_by_fixed(session: Session, fixed_ids: list[int]) -> dict[int, str]:
    if not fixed_ids:
        return {}
    rows = session.execute(
        select(FloatingIP.fixed_ip_id, FloatingIP.address).where(
            FloatingIP.fixed_ip_id.in_(fixed_ids)
        )
    )
    return {fixed_id: address for fixed_id, address in rows if fixed_id is not None}


def _instance_view(instance: Instance, floating: dict[int, str]) -> InstanceView:
    return InstanceView(
        id=instance.id,
        name=instance.name,
        project=instance.project.name,
        host=instance.host,
        addresses=tuple(
            AddressView(
                network=f.network.cidr,
                address=f.address,
                mac=f.mac or "",
                floating=floating.get(f.id),
            )
            for f in sorted(instance.fixed_ips, key=lambda f: f.address_int)
        ),
        security_groups=tuple(sorted(g.name for g in instance.security_groups)),
        created_at=instance.created_at,
    )
