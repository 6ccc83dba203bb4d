"""NetconService: the one service API that the console, the CLI and scripts call.

A facade over the service's parts. Each part (networks, guests, instances, floating
IPs, security groups, ingress, VPNs, agents, this host, operations) holds the one
transaction context (core.service.base.ServiceContext); a part that needs another is
handed it here. Every public method is one database transaction (or one read), made
by the part that owns it; refusals raise the errors of :mod:`core.errors` with a
one-line message naming the field and the rule.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from core.config import Settings
from core.defaults import LOCK_TIMEOUT
from core.service.base import ChangeSet, Listener, ServiceContext
from core.store.db import Database
from core.store.schema import utcnow

if TYPE_CHECKING:
    from core.service.agents import AgentsPart
    from core.service.floating import FloatingPart
    from core.service.guests import GuestsPart
    from core.service.host import HostPart
    from core.service.ingress import IngressPart
    from core.service.instances import InstancesPart
    from core.service.networks import NetworksPart
    from core.service.operations import OperationsPart
    from core.service.secgroups import SecurityGroupsPart
    from core.service.vpn import VpnPart

P = ParamSpec("P")
R = TypeVar("R")


class _PartMethod:
    """A part's method named in the facade's class body before its module is imported."""

    def __init__(self, module: str, part: str, name: str) -> None:
        self._where = (module, part)
        self.__name__ = name

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        module, part = self._where
        method = getattr(getattr(importlib.import_module(module), part), self.__name__)
        return method.__doc__  # type: ignore[no-any-return]


class _Part:
    """Stands for a part's class at run time, so that naming its methods below imports
    nothing; mypy sees the classes themselves."""

    def __init__(self, module: str, part: str) -> None:
        self._where = (module, part)

    def __getattr__(self, name: str) -> _PartMethod:
        return _PartMethod(*self._where, name)


if not TYPE_CHECKING:
    AgentsPart = _Part("core.service.agents", "AgentsPart")
    FloatingPart = _Part("core.service.floating", "FloatingPart")
    GuestsPart = _Part("core.service.guests", "GuestsPart")
    HostPart = _Part("core.service.host", "HostPart")
    IngressPart = _Part("core.service.ingress", "IngressPart")
    InstancesPart = _Part("core.service.instances", "InstancesPart")
    NetworksPart = _Part("core.service.networks", "NetworksPart")
    OperationsPart = _Part("core.service.operations", "OperationsPart")
    SecurityGroupsPart = _Part("core.service.secgroups", "SecurityGroupsPart")
    VpnPart = _Part("core.service.vpn", "VpnPart")


class _Forward(Generic[P, R]):
    """A public method of the facade: the same method of one of its parts."""

    def __init__(self, part: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.part = part
        self.name = method.__name__
        self._method = method

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        # Read on demand: the part's module may not be imported yet.
        return self._method.__doc__

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
        self.context = ServiceContext(
            db_url,
            settings,
            actor,
            clock=clock,
            rng=rng,
            create=create,
            lock_timeout=lock_timeout,
            application=application,
        )

    # -- the parts, each made (and its module imported) on first use: a command that
    # uses one part, such as `host apply`, does not pay for the others' imports.

    @cached_property
    def networks(self) -> NetworksPart:
        from core.service.networks import NetworksPart

        return NetworksPart(self.context)

    @cached_property
    def guests(self) -> GuestsPart:
        from core.service.guests import GuestsPart

        return GuestsPart(self.context, self.networks)

    @cached_property
    def instances(self) -> InstancesPart:
        from core.service.instances import InstancesPart

        return InstancesPart(self.context)

    @cached_property
    def floating(self) -> FloatingPart:
        from core.service.floating import FloatingPart

        return FloatingPart(self.context)

    @cached_property
    def secgroups(self) -> SecurityGroupsPart:
        from core.service.secgroups import SecurityGroupsPart

        return SecurityGroupsPart(self.context)

    @cached_property
    def ingress(self) -> IngressPart:
        from core.service.ingress import IngressPart

        return IngressPart(self.context)

    @cached_property
    def agents(self) -> AgentsPart:
        from core.service.agents import AgentsPart

        return AgentsPart(self.context)

    @cached_property
    def vpn(self) -> VpnPart:
        from core.service.vpn import VpnPart

        return VpnPart(self.context, self.agents)

    @cached_property
    def this_host(self) -> HostPart:
        from core.service.host import HostPart

        return HostPart(self.context, self.agents)

    @cached_property
    def operations(self) -> OperationsPart:
        from core.service.operations import OperationsPart

        return OperationsPart(self.context)

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
