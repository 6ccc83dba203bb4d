"""NetconAPI: the service as its callers see it, so that a type checker can follow a
call from a key in the console (or a command) down to the transaction.

Every result is one of the frozen views of :mod:`core.views`, host plans included.
:class:`core.service.NetconService` is the implementation; the check at the bottom of
this module makes mypy prove that it still matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from core.config import Settings
from core.views import (
    AuditView,
    ChangeStatusView,
    EvacuationView,
    FixedIPView,
    FloatingIPView,
    FloatingRangeView,
    HostView,
    IngressVerdictView,
    InstanceDetail,
    InstanceIngressView,
    InstanceView,
    KeyView,
    NetworkView,
    OwingView,
    Page,
    PendingOverview,
    PendingView,
    PlanView,
    ProjectView,
    RuleView,
    SecurityGroupView,
    VpnUserView,
    VpnView,
)


class DatabaseInfo(Protocol):
    """What a caller may know of the database behind the service."""

    @property
    def safe_url(self) -> str: ...

    def writable(self) -> bool: ...


class NetconAPI(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> DatabaseInfo: ...

    # -- projects and instances ----------------------------------------------------

    def create_project(self, name: str, manager: str | None = None) -> ProjectView: ...

    def list_projects(self) -> list[ProjectView]: ...

    def delete_project(self, name: str) -> ProjectView: ...

    def launch_obstacle(self, project: str) -> str | None: ...

    def launch_instance(
        self,
        project: str,
        name: str,
        security_groups: Iterable[str] = (),
        *,
        host: str | None = None,
        user_data: bytes | None = None,
        key: str | None = None,
    ) -> InstanceView: ...

    def terminate_instance(self, name: str) -> InstanceView: ...

    def list_instances(self, project: str | None = None) -> list[InstanceView]: ...

    def get_instance(self, name: str) -> InstanceDetail: ...

    # -- networks and fixed IPs ------------------------------------------------------

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
    ) -> list[NetworkView]: ...

    def list_networks(self, project: str | None = None) -> list[NetworkView]: ...

    def get_network(self, ref: str | int) -> NetworkView: ...

    def delete_network(self, ref: str | int) -> NetworkView: ...

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
    ) -> Page[FixedIPView]: ...

    def reserve_fixed_ip(self, address: str) -> FixedIPView: ...

    def unreserve_fixed_ip(self, address: str) -> FixedIPView: ...

    # -- floating IPs ----------------------------------------------------------------

    def create_floating_range(
        self, host: str, ip_range: str, pool: str | None = None, interface: str | None = None
    ) -> FloatingRangeView: ...

    def delete_floating_range(self, ip_range: str) -> FloatingRangeView: ...

    def list_floating_ips(
        self, host: str | None = None, project: str | None = None, pool: str | None = None
    ) -> list[FloatingIPView]: ...

    def get_floating_ip(self, address: str) -> FloatingIPView: ...

    def allocate_floating_ip(self, project: str, pool: str | None = None) -> FloatingIPView: ...

    def associate_floating_ip(
        self,
        address: str,
        instance: str,
        fixed_address: str | None = None,
        *,
        move: bool = True,
    ) -> FloatingIPView: ...

    def disassociate_floating_ip(self, address: str) -> FloatingIPView: ...

    def release_floating_ip(self, address: str) -> FloatingIPView: ...

    # -- security groups -------------------------------------------------------------

    def create_security_group(
        self, project: str, name: str, description: str = ""
    ) -> SecurityGroupView: ...

    def list_security_groups(self, project: str | None = None) -> list[SecurityGroupView]: ...

    def delete_security_group(self, project: str, name: str) -> SecurityGroupView: ...

    def add_security_group_rule(
        self,
        project: str,
        group: str,
        protocol: str,
        from_port: int | str | None = None,
        to_port: int | str | None = None,
        cidr: str | None = None,
        source_group: str | None = None,
        ethertype: str | None = None,
    ) -> RuleView: ...

    def list_security_group_rules(self, project: str, group: str) -> list[RuleView]: ...

    def remove_security_group_rule(self, rule_id: int | str) -> RuleView: ...

    def add_instance_security_group(self, instance: str, group: str) -> tuple[str, ...]: ...

    def remove_instance_security_group(self, instance: str, group: str) -> tuple[str, ...]: ...

    def set_instance_security_groups(
        self, instance: str, groups: list[str]
    ) -> tuple[str, ...]: ...

    def instance_ingress(self, instance: str) -> InstanceIngressView: ...

    def explain_ingress(
        self,
        instance: str,
        source: str,
        protocol: str,
        port: int | str | None = None,
        icmp_type: int | str | None = None,
        icmp_code: int | str | None = None,
    ) -> IngressVerdictView: ...

    # -- VPNs ------------------------------------------------------------------------

    def list_vpns(self, netns: str | None = None) -> list[VpnView]: ...

    def run_vpn(self, project: str, netns: str | None = None) -> list[str]: ...

    def stop_vpn(self, project: str, netns: str | None = None) -> list[str]: ...

    def spawn_vpns(self, netns: str | None = None) -> list[str]: ...

    def vpn_client_config(self, project: str, user: str, netns: str | None = None) -> str: ...

    def revoke_vpn_user(self, project: str, user: str, netns: str | None = None) -> int: ...

    def list_vpn_users(self, project: str, netns: str | None = None) -> list[VpnUserView]: ...

    # -- hosts and the record --------------------------------------------------------

    def list_hosts(self) -> list[HostView]: ...

    def host_plan_view(self, netns: str | None = None) -> PlanView: ...

    def host_apply_view(self, netns: str | None = None) -> PlanView: ...

    def list_audit(self, limit: int = 200, offset: int = 0) -> list[AuditView]: ...

    # -- several hosts ---------------------------------------------------------------

    def pending_for(self, host: str) -> PendingView: ...

    def pending_overview(self) -> PendingOverview: ...

    def tracking_changes(self) -> AbstractContextManager[list[ChangeSet]]: ...

    def owing(self, made: Sequence[ChangeSet], *, look_here: bool = False) -> OwingView: ...

    def change_status(self, change: int) -> ChangeStatusView: ...

    def evacuate_host(self, dead: str, to: str | None = None) -> EvacuationView: ...

    # -- what guests get -------------------------------------------------------------

    def modify_network(
        self,
        ref: str | int,
        *,
        dns1: Any = ...,
        dns2: Any = ...,
        mtu: Any = ...,
        dhcp_lease_time: Any = ...,
        fixed_range_v6: Any = ...,
        ipv6_mode: str | None = None,
        host: str | None = None,
        project: str | None = None,
        disassociate_project: bool = False,
        disassociate_host: bool = False,
        segmentation: str | None = None,
    ) -> NetworkView: ...

    def add_key(self, project: str, name: str, public_key: str) -> KeyView: ...

    def list_keys(self, project: str | None = None) -> list[KeyView]: ...

    def delete_key(self, project: str, name: str) -> KeyView: ...


if TYPE_CHECKING:
    from core.service import NetconService
    from core.service.base import ChangeSet

    def _implements(service: NetconService) -> NetconAPI:
        # mypy fails here if the service and the protocol drift apart.
        return service
