"""Plain, immutable results of the service API.

The console, the CLI and scripts get these instead of ORM objects, so nothing outside
``core`` holds a database session or can change state by accident.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar


class View:
    def to_dict(self) -> dict[str, Any]:
        result = {}
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if isinstance(value, datetime):
                value = value.isoformat(timespec="seconds")
            elif isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, View) else v for v in value]
            elif isinstance(value, View):
                value = value.to_dict()
            result[item.name] = value
        return result


@dataclass(frozen=True)
class ProjectView(View):
    id: int
    name: str
    manager: str
    network: str | None  # CIDR of its VLAN network, once it has one
    instances: int
    floating_ips: int
    created_at: datetime


@dataclass(frozen=True)
class NetworkView(View):
    id: int
    label: str
    manager: str
    cidr: str
    netmask: str
    gateway: str
    broadcast: str
    dhcp_start: str
    dns1: str | None
    dns2: str | None
    bridge: str
    bridge_interface: str | None
    segmentation: str | None
    vlan: int | None
    project: str | None
    host: str | None
    vpn_public_address: str | None
    vpn_public_port: int | None
    vpn_private_address: str | None
    size: int
    used: int  # allocated to instances or still leased
    reserved: int
    free: int


@dataclass(frozen=True)
class FixedIPView(View):
    id: int
    address: str
    network: str  # CIDR
    network_id: int
    instance: str | None
    project: str | None
    mac: str | None
    reserved: bool
    allocated: bool
    leased: bool

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "state": self.state}

    @property
    def state(self) -> str:
        if self.reserved:
            return "reserved"
        if self.allocated:
            return "leased" if self.leased else "allocated"
        if self.leased:
            return "releasing"
        return "free"


@dataclass(frozen=True)
class FloatingIPView(View):
    id: int
    address: str
    pool: str
    host: str
    interface: str
    project: str | None
    instance: str | None
    fixed_address: str | None
    auto_assigned: bool


@dataclass(frozen=True)
class AddressView(View):
    network: str
    address: str
    mac: str
    floating: str | None


@dataclass(frozen=True)
class InstanceView(View):
    id: int
    name: str
    project: str
    host: str | None
    addresses: tuple[AddressView, ...]
    security_groups: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class InjectedConfig(View):
    """What a Flat network writes into the instance's image at launch."""

    interfaces: str  # an /etc/network/interfaces stanza
    cloud_init: str  # a cloud-init network-config version 2 document


@dataclass(frozen=True)
class InstanceDetail(View):
    instance: InstanceView
    injected: InjectedConfig | None


@dataclass(frozen=True)
class RuleView(View):
    id: int
    protocol: str
    from_port: int
    to_port: int
    cidr: str | None
    source_group: str | None


@dataclass(frozen=True)
class SecurityGroupView(View):
    id: int
    project: str
    name: str
    description: str
    rules: tuple[RuleView, ...]
    instances: int


@dataclass(frozen=True)
class VpnView(View):
    project: str | None
    network: str
    public_address: str | None
    public_port: int | None
    private_address: str | None
    state: str


@dataclass(frozen=True)
class HostView(View):
    name: str
    role: str
    last_heartbeat: datetime | None
    alive: bool
    networks: int
    floating_ips: int


@dataclass(frozen=True)
class AuditView(View):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class VpnUserView(View):
    """A user of a project's VPN: one client certificate, in use or revoked."""

    project: str
    user: str
    state: str  # "active" or "revoked"
    serial: str  # hexadecimal, as the revocation list names it


@dataclass(frozen=True)
class PlannedOperation(View):
    """One step of a host plan, and the names it acts on (bridges, addresses, MACs)."""

    text: str
    subjects: tuple[str, ...]


@dataclass(frozen=True)
class PlanView(View):
    """What `host apply` would do (or did) on one host.

    Each operation names what it acts on, so a caller can tell which networks, addresses
    and instances still wait for the host.
    """

    host: str
    operations: tuple[PlannedOperation, ...]
    problems: tuple[str, ...]

    def describe(self) -> list[str]:
        return [operation.text for operation in self.operations]


RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Page(View, Generic[RowT]):
    """A window of a large listing (fixed IPs of a /16) with the total it came from."""

    rows: tuple[RowT, ...]
    total: int
    offset: int
