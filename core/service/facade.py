"""NetconService: the one service API that the console, the CLI and scripts call.

A facade over the service's parts. Each part (networks, guests, instances, floating
IPs, security groups, ingress, VPNs, agents, this host, operations) holds the one
transaction context (core.service.base.ServiceContext); a part that needs another is
handed it here. Every public method is one database transaction (or one read), made
by the part that owns it; refusals raise the errors of :mod:`core.errors` with a
one-line message naming the field and the rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from core.config import Settings
from core.defaults import LOCK_TIMEOUT
from core.service.agents import AgentsPart
from core.service.base import ChangeSet, Listener, ServiceContext
from core.service.floating import FloatingPart
from core.service.guests import GuestsPart
from core.service.host import HostPart
from core.service.ingress import IngressPart
from core.service.instances import InstancesPart
from core.service.networks import NetworksPart
from core.service.operations import OperationsPart
from core.service.secgroups import SecurityGroupsPart
from core.service.vpn import VpnPart
from core.store.db import Database
from core.store.schema import utcnow

P = ParamSpec("P")
R = TypeVar("R")


class _Forward(Generic[P, R]):
    """A public method of the facade: the same method of one of its parts."""

    def __init__(self, part: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.part = part
        self.name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, service: None, owner: type) -> _Forward[P, R]: ...

    @overload
    def __get__(self, service: object, owner: type) -> Callable[P, R]: ...

    def __get__(self, service: object | None, owner: type) -> _Forward[P, R] | Callable[P, R]:
        if service is None:
            return self
        method: Callable[P, R] = getattr(getattr(service, self.part), self.name)
        return method


def _forward(part: str, method: Callable[Concatenate[Any, P], R]) -> _Forward[P, R]:
    return _Forward(part, method)


class NetconService:
    """Networks, fixed and floating IPs, projects, instances, security groups, VPNs.

    The demo cloud is not part of it: core.service.demo.load_demo fills a database
    through these calls."""

    def __init__(
        self,
        db_url: str | None = None,
        settings: Settings | None = None,
        actor: str | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        create: bool = True,
        lock_timeout: float = LOCK_TIMEOUT,
        application: str = "netcon",
    ) -> None:
        """See ServiceContext for the arguments."""
        self.context = context = ServiceContext(
            db_url,
            settings,
            actor,
            clock=clock,
            rng=rng,
            create=create,
            lock_timeout=lock_timeout,
            application=application,
        )
        self.networks = NetworksPart(context)
        self.guests = GuestsPart(context, self.networks)
        self.instances = InstancesPart(context)
        self.floating = FloatingPart(context)
        self.secgroups = SecurityGroupsPart(context)
        self.ingress = IngressPart(context)
        self.agents = AgentsPart(context)
        self.vpn = VpnPart(context, self.agents)
        self.this_host = HostPart(context, self.agents)
        self.operations = OperationsPart(context)

    # -- the context -----------------------------------------------------------------

    @property
    def db(self) -> Database:
        return self.context.db

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self.context.settings = settings

    @property
    def actor(self) -> str:
        return self.context.actor

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.context.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.context.clock = clock

    @property
    def rng(self) -> random.Random:
        return self.context.rng

    @rng.setter
    def rng(self, rng: random.Random) -> None:
        self.context.rng = rng

    @property
    def listeners(self) -> list[Listener]:
        return self.context.listeners

    @property
    def last_change(self) -> ChangeSet | None:
        """The last change this service committed (the console follows it to "applied")."""
        return self.context.last_change

    tracking_changes = _forward("context", ServiceContext.tracking_changes)
    deferred_changes = _forward("context", ServiceContext.deferred_changes)

    # -- networks ------------------------------------------------------------
    create_networks = _forward("networks", NetworksPart.create_networks)
    delete_network = _forward("networks", NetworksPart.delete_network)
    get_network = _forward("networks", NetworksPart.get_network)
    list_fixed_ips = _forward("networks", NetworksPart.list_fixed_ips)
    list_networks = _forward("networks", NetworksPart.list_networks)
    reserve_fixed_ip = _forward("networks", NetworksPart.reserve_fixed_ip)
    unreserve_fixed_ip = _forward("networks", NetworksPart.unreserve_fixed_ip)

    # -- guests --------------------------------------------------------------
    add_key = _forward("guests", GuestsPart.add_key)
    delete_key = _forward("guests", GuestsPart.delete_key)
    instance_metadata = _forward("guests", GuestsPart.instance_metadata)
    instance_metadata_v6 = _forward("guests", GuestsPart.instance_metadata_v6)
    list_keys = _forward("guests", GuestsPart.list_keys)
    modify_network = _forward("guests", GuestsPart.modify_network)

    # -- instances -----------------------------------------------------------
    create_project = _forward("instances", InstancesPart.create_project)
    delete_project = _forward("instances", InstancesPart.delete_project)
    get_instance = _forward("instances", InstancesPart.get_instance)
    launch_instance = _forward("instances", InstancesPart.launch_instance)
    launch_obstacle = _forward("instances", InstancesPart.launch_obstacle)
    list_instances = _forward("instances", InstancesPart.list_instances)
    list_projects = _forward("instances", InstancesPart.list_projects)
    terminate_instance = _forward("instances", InstancesPart.terminate_instance)

    # -- floating ------------------------------------------------------------
    allocate_floating_ip = _forward("floating", FloatingPart.allocate_floating_ip)
    associate_floating_ip = _forward("floating", FloatingPart.associate_floating_ip)
    create_floating_range = _forward("floating", FloatingPart.create_floating_range)
    delete_floating_range = _forward("floating", FloatingPart.delete_floating_range)
    disassociate_floating_ip = _forward("floating", FloatingPart.disassociate_floating_ip)
    floating_ips_json = _forward("floating", FloatingPart.floating_ips_json)
    get_floating_ip = _forward("floating", FloatingPart.get_floating_ip)
    list_floating_ips = _forward("floating", FloatingPart.list_floating_ips)
    release_floating_ip = _forward("floating", FloatingPart.release_floating_ip)

    # -- secgroups -----------------------------------------------------------
    add_instance_security_group = _forward(
        "secgroups", SecurityGroupsPart.add_instance_security_group
    )
    add_security_group_rule = _forward("secgroups", SecurityGroupsPart.add_security_group_rule)
    create_security_group = _forward("secgroups", SecurityGroupsPart.create_security_group)
    delete_security_group = _forward("secgroups", SecurityGroupsPart.delete_security_group)
    list_security_groups = _forward("secgroups", SecurityGroupsPart.list_security_groups)
    list_security_group_rules = _forward("secgroups", SecurityGroupsPart.list_security_group_rules)
    remove_instance_security_group = _forward(
        "secgroups", SecurityGroupsPart.remove_instance_security_group
    )
    remove_security_group_rule = _forward(
        "secgroups", SecurityGroupsPart.remove_security_group_rule
    )
    set_instance_security_groups = _forward(
        "secgroups", SecurityGroupsPart.set_instance_security_groups
    )

    # -- ingress -------------------------------------------------------------
    explain_ingress = _forward("ingress", IngressPart.explain_ingress)
    instance_ingress = _forward("ingress", IngressPart.instance_ingress)

    # -- vpn -----------------------------------------------------------------
    list_vpn_users = _forward("vpn", VpnPart.list_vpn_users)
    revoke_vpn_user = _forward("vpn", VpnPart.revoke_vpn_user)
    run_vpn = _forward("vpn", VpnPart.run_vpn)
    spawn_vpns = _forward("vpn", VpnPart.spawn_vpns)
    stop_vpn = _forward("vpn", VpnPart.stop_vpn)
    vpn_client_config = _forward("vpn", VpnPart.vpn_client_config)

    # -- agents --------------------------------------------------------------
    announce_vpn_ip = _forward("agents", AgentsPart.announce_vpn_ip)
    change_status = _forward("agents", AgentsPart.change_status)
    down_hosts = _forward("agents", AgentsPart.down_hosts)
    evacuate_host = _forward("agents", AgentsPart.evacuate_host)
    heartbeat = _forward("agents", AgentsPart.heartbeat)
    owed = _forward("agents", AgentsPart.owed)
    pending_for = _forward("agents", AgentsPart.pending_for)
    pending_overview = _forward("agents", AgentsPart.pending_overview)
    record_applied = _forward("agents", AgentsPart.record_applied)
    serving_lease = _forward("agents", AgentsPart.serving_lease)

    # -- this host -----------------------------------------------------------
    host_apply = _forward("this_host", HostPart.host_apply)
    host_apply_view = _forward("this_host", HostPart.host_apply_view)
    host_plan = _forward("this_host", HostPart.host_plan)
    host_plan_view = _forward("this_host", HostPart.host_plan_view)
    owing = _forward("this_host", HostPart.owing)

    # -- operations ----------------------------------------------------------
    dhcp_event = _forward("operations", OperationsPart.dhcp_event)
    list_audit = _forward("operations", OperationsPart.list_audit)
    list_hosts = _forward("operations", OperationsPart.list_hosts)
    list_vpns = _forward("operations", OperationsPart.list_vpns)
