"""Plain, immutable results of the service API.

The console, the CLI and scripts get these instead of database rows, so nothing outside
``core`` holds a connection or can change state by accident. They are named tuples: a
listing of a /16 makes 65,534 of them, and a tuple is built several times faster than
a frozen dataclass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar


def to_dict(view: Any) -> Any:
    """A view (or a tuple of views) as plain dicts and lists, ready for JSON."""
    if hasattr(view, "_asdict"):
        return {key: to_dict(value) for key, value in view._asdict().items()}
    if isinstance(view, tuple | list):
        return [to_dict(value) for value in view]
    if isinstance(view, datetime):
        return view.isoformat(timespec="seconds")
    return view


class ProjectView(NamedTuple):
    id: int
    name: str
    manager: str
    network: str | None  # CIDR of its VLAN network, once it has one
    instances: int
    floating_ips: int
    created_at: datetime


class NetworkView(NamedTuple):
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
    multi_host: bool = False
    mtu: int | None = None  # the effective MTU guests are handed
    dhcp_lease_time: int | None = None
    # IPv6 beside IPv4 (None: IPv4 only): the /64, its gateway, the address mode.
    cidr_v6: str | None = None
    gateway_v6: str | None = None
    ipv6_mode: str | None = None


def fixed_ip_state(reserved: bool, allocated: bool, leased: bool) -> str:
    if reserved:
        return "reserved"
    if allocated:
        return "leased" if leased else "allocated"
    if leased:
        return "releasing"
    return "free"


class FixedIPView(NamedTuple):
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
    state: str  # fixed_ip_state() of the three flags
    # On a multi-host network: the host that serves it from this address.
    host: str | None = None
    # The instance's IPv6 address there, on a dual-stack network.
    address_v6: str | None = None


class FloatingIPView(NamedTuple):
    id: int
    address: str
    pool: str
    host: str
    interface: str
    project: str | None
    instance: str | None
    fixed_address: str | None
    auto_assigned: bool


class FloatingRangeView(NamedTuple):
    """What `floating create` made or `floating delete` removed."""

    range: str
    addresses: int
    pool: str | None  # None: the range held several pools
    host: str | None
    interface: str | None


class AddressView(NamedTuple):
    network: str
    address: str
    mac: str
    floating: str | None
    address_v6: str | None = None  # on a dual-stack network


class InstanceView(NamedTuple):
    id: int
    name: str
    project: str
    host: str | None
    addresses: tuple[AddressView, ...]
    security_groups: tuple[str, ...]
    created_at: datetime


class InjectedConfig(NamedTuple):
    """What a Flat network writes into the instance's image at launch."""

    interfaces: str  # an /etc/network/interfaces stanza
    cloud_init: str  # a cloud-init network-config version 2 document


class InstanceDetail(NamedTuple):
    instance: InstanceView
    injected: InjectedConfig | None


class RuleView(NamedTuple):
    id: int
    protocol: str
    from_port: int
    to_port: int
    cidr: str | None
    source_group: str | None
    ethertype: str = "IPv4"  # the family it judges: IPv4 or IPv6


class SecurityGroupView(NamedTuple):
    id: int
    project: str
    name: str
    description: str
    rules: tuple[RuleView, ...]
    instances: int


class IngressRuleView(NamedTuple):
    """One rule as it applies to an instance: which of its groups it comes from."""

    group: str
    id: int
    protocol: str
    from_port: int
    to_port: int
    cidr: str | None
    source_group: str | None
    text: str  # "tcp 22 from 10.0.0.0/8"
    ethertype: str = "IPv4"


class InstancePortView(NamedTuple):
    network: str
    address: str
    mac: str
    port: str  # the name of the instance's port on the bridge (see core/linux/ports.py)
    dhcp_server: str  # the network's dnsmasq, whose answers always pass


class InstanceIngressView(NamedTuple):
    """What may reach an instance: its groups' rules, what passes anyway, and the default."""

    instance: str
    project: str
    groups: tuple[str, ...]
    ports: tuple[InstancePortView, ...]
    rules: tuple[IngressRuleView, ...]
    always: tuple[str, ...]
    otherwise: str  # what happens to the rest: "deny"


class IngressVerdictView(NamedTuple):
    """`secgroup explain`: whether a first packet reaches an instance, and what decides."""

    instance: str
    address: str  # the instance's fixed address the packet is for
    packet: str  # "tcp 22 from 203.0.113.1"
    allowed: bool
    decided_by: str
    rule: IngressRuleView | None  # the rule that lets it in, if one does


class VpnView(NamedTuple):
    project: str | None
    network: str
    # Where clients must connect now: the address of the network's host.
    public_address: str | None
    public_port: int | None
    private_address: str | None
    state: str
    # Client configurations handed out before the VPN moved, which no longer reach it.
    out_of_date: int = 0


class HostView(NamedTuple):
    name: str
    role: str
    last_heartbeat: datetime | None
    alive: bool
    networks: int
    floating_ips: int
    # What its agent has applied: changes still pending on it, the last one applied,
    # when, and the last apply that failed (None when the last one worked).
    pending: int = 0
    applied_change: int | None = None
    applied_at: datetime | None = None
    last_error: str | None = None
    # Where VPN clients reach it, as it last said (its vpn_ip setting).
    vpn_ip: str | None = None
    # Its instances on multi-host networks, which it serves (an evacuation moves them).
    multi_host_instances: int = 0


class PendingView(NamedTuple):
    """The changes a host has not applied yet, and what they touched."""

    host: str
    applied: int | None
    changes: tuple[int, ...]
    network_ids: tuple[int, ...]
    floating: tuple[str, ...]
    latest: int | None  # the newest change for any host
    # Some pending change named no networks, floating IPs, security groups or VPNs
    # (floating IPs without saying which): only a full comparison covers it.
    whole_host: bool = False


class OwedView(NamedTuple):
    """What one host owes, in the names rows are marked by: the changes it has not
    applied, the bridges of the networks they touched and their floating addresses."""

    host: str
    changes: tuple[int, ...]
    bridges: tuple[str, ...] = ()
    floating: tuple[str, ...] = ()
    # Some change named neither networks nor floating IPs (a security group's).
    whole_host: bool = False
    # The security groups ("project/name") whose rules or members the changes touched,
    # and the rules (by id) they added.
    groups: tuple[str, ...] = ()
    rules: tuple[int, ...] = ()
    # Change by change, the names it touched (bridges, floating addresses, groups, the
    # MACs of instance ports whose filter changed, and an added rule as
    # core.secrules.rule_key names it): which changes a row waits for.
    touched: tuple[tuple[int, tuple[str, ...]], ...] = ()


class PendingOverview(NamedTuple):
    """Every host and what each owes, read at one moment: ``hosts[i].pending`` is
    ``len(owed[name].changes)`` (hosts that owe nothing have no entry in ``owed``)."""

    hosts: tuple[HostView, ...]
    owed: dict[str, OwedView]


class OwingView(NamedTuple):
    """Where some changes just made stand: the hosts that still owe them, and the hosts
    that had work to do for them and have done it. A host they named that had nothing
    to do is in neither: the change was saved, and no host owes anything for it."""

    changes: tuple[int, ...]
    pending_on: tuple[str, ...] = ()
    applied_on: tuple[str, ...] = ()


class ChangeStatusView(NamedTuple):
    change: int
    pending_on: tuple[str, ...]  # hosts that still owe it; empty: applied everywhere


class EvacuationView(NamedTuple):
    host: str
    networks: tuple[tuple[str, str], ...]  # (CIDR, new host)
    floating: tuple[tuple[str, str], ...]  # (address, new host)
    # Instances on multi-host networks, which their host served: (name, new host).
    instances: tuple[tuple[str, str], ...] = ()


class AuditView(NamedTuple):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: str | None
    after: str | None


class VpnUserView(NamedTuple):
    """A user of a project's VPN: one client certificate, in use or revoked."""

    project: str
    user: str
    state: str  # "active", "out of date" (made before the VPN moved) or "revoked"
    serial: str  # hexadecimal, as the revocation list names it
    # What the user's configuration says: ADDRESS:PORT, and the host whose authority
    # signed it (None: made before netcon recorded it).
    made_for: str | None = None
    host: str | None = None


class PlannedOperation(NamedTuple):
    """One step of a host plan, and the names it acts on (bridges, addresses, MACs)."""

    text: str
    subjects: tuple[str, ...]


class PlanView(NamedTuple):
    """What `host apply` would do (or did) on one host.

    Each operation names what it acts on, so a caller can tell which networks, addresses
    and instances still wait for the host.
    """

    host: str
    operations: tuple[PlannedOperation, ...]
    problems: tuple[str, ...]
    # The problems each hold back one network only: the rest can still be applied.
    partial: bool = False
    # What an admin should know that the plan neither changes nor holds back (a bridge
    # port that is closed, guests cut off from their DHCP server).
    warnings: tuple[str, ...] = ()
    # The bridges of the networks the problems hold back: still owed, though the plan
    # has no operation for them.
    held: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        return [operation.text for operation in self.operations]


RowT = TypeVar("RowT")


class Page(NamedTuple, Generic[RowT]):
    """A window of a large listing (fixed IPs of a /16) with the total it came from."""

    rows: tuple[RowT, ...]
    total: int
    offset: int


class KeyView(NamedTuple):
    id: int
    project: str
    name: str
    fingerprint: str
    public_key: str
    instances: int
    created_at: datetime


class MetadataView(NamedTuple):
    """What the metadata service tells one instance about itself."""

    instance_id: int
    name: str
    project: str
    host: str | None
    address: str
    mac: str
    cidr: str
    netmask: str
    gateway: str
    dns: tuple[str, ...]
    mtu: int
    domain: str
    floating: str | None
    security_groups: tuple[str, ...]
    key_name: str | None
    public_key: str | None
    user_data: bytes | None
    # Its IPv6 side on a dual-stack network (None: IPv4 only).
    address_v6: str | None = None
    cidr_v6: str | None = None
    gateway_v6: str | None = None
    ipv6_mode: str | None = None
