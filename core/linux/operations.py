"""The typed operations a plan is made of; each says in one line what it will do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.linux.dnsmasq6 import Lease6
    from core.linux.filter_record import Record
    from core.linux.vpn.spec import VpnSpec


@dataclass(frozen=True)
class Operation:
    def describe(self) -> str:
        raise NotImplementedError


# -- links and addresses (netlink) -------------------------------------------------


@dataclass(frozen=True)
class CreateBridge(Operation):
    name: str

    def describe(self) -> str:
        return f"create bridge {self.name}"


@dataclass(frozen=True)
class CreateVxlan(Operation):
    name: str
    vni: int
    parent: str
    group: str
    port: int

    def describe(self) -> str:
        return f"create VXLAN {self.name} (VNI {self.vni}) over {self.parent}, group {self.group}"


@dataclass(frozen=True)
class CreateVlan(Operation):
    name: str
    vlan_id: int
    parent: str
    network: str

    def describe(self) -> str:
        return f"create 802.1Q VLAN {self.name} (id {self.vlan_id}) on {self.parent}"


@dataclass(frozen=True)
class SetMaster(Operation):
    port: str
    bridge: str

    def describe(self) -> str:
        return f"enslave {self.port} to {self.bridge}"


@dataclass(frozen=True)
class ClaimLink(Operation):
    """Mark a link netcon created as its own (an interrupted apply could not)."""

    name: str

    def describe(self) -> str:
        return f"mark {self.name} as netcon's"


@dataclass(frozen=True)
class SetUp(Operation):
    name: str

    def describe(self) -> str:
        return f"set {self.name} up"


@dataclass(frozen=True)
class SetMtu(Operation):
    """A network's bridge, segment link or instance port at the network's MTU."""

    name: str
    mtu: int

    def describe(self) -> str:
        return f"set MTU of {self.name} to {self.mtu}"


@dataclass(frozen=True)
class SetHairpin(Operation):
    """An instance port of a bridge this host routes for in hairpin mode: a connection
    from the instance to its own floating IP, once NATed, goes back out that port."""

    name: str

    def describe(self) -> str:
        return f"set hairpin mode on {self.name}"


@dataclass(frozen=True)
class SetUplinkHairpin(Operation):
    """The segment link or flat uplink of a bridge this host routes for, in hairpin mode
    (``on``) or out of it. Two guests behind that link reach each other's floating IPs
    through this host, and once NATed the packet must go back out the link it came in
    on; the bridge table lets out that way only what this host NATed (see nft.py), so
    hairpin mode is set after the nft batch and cleared before it."""

    name: str
    on: bool = True

    def describe(self) -> str:
        if self.on:
            return f"set hairpin mode on uplink {self.name} (for what this host NATs)"
        return f"clear hairpin mode on uplink {self.name}"


@dataclass(frozen=True)
class AddAddress(Operation):
    ifname: str
    address: str
    prefixlen: int
    broadcast: str | None = None
    label: str | None = None
    # It lasts as long as this host's heartbeat lease (the kernel deletes it then).
    leased: bool = False

    def describe(self) -> str:
        return f"add address {self.address}/{self.prefixlen} to {self.ifname}"


@dataclass(frozen=True)
class SetAddressLifetime(Operation):
    """An address that is where it should be, with the wrong kind of lifetime: forever
    where it should last as long as the heartbeat lease, or the other way round."""

    ifname: str
    address: str
    prefixlen: int
    leased: bool

    def describe(self) -> str:
        where = f"address {self.address}/{self.prefixlen} on {self.ifname}"
        if self.leased:
            return f"let {where} last only as long as this host's heartbeat lease"
        return f"make {where} permanent (fencing is off)"


@dataclass(frozen=True)
class RenewLease(Operation):
    """Extend the lifetime of addresses that carry the heartbeat lease to the lease just
    renewed. Not a difference between the host and the database: only a process that has
    just renewed the heartbeat makes one (the agent, after each heartbeat)."""

    addresses: tuple[tuple[str, str, int], ...]  # (ifname, address, prefixlen)
    # VPN taps whose element in table bridge netcon carries the lease.
    ports: tuple[str, ...] = ()

    def describe(self) -> str:
        ports = f" and {len(self.ports)} VPN port(s)" if self.ports else ""
        return f"renew the heartbeat lease of {len(self.addresses)} address(es){ports}"


@dataclass(frozen=True)
class DeleteAddress(Operation):
    ifname: str
    address: str
    prefixlen: int

    def describe(self) -> str:
        return f"delete address {self.address}/{self.prefixlen} from {self.ifname}"


@dataclass(frozen=True)
class DeleteLink(Operation):
    name: str

    def describe(self) -> str:
        return f"delete link {self.name}"


@dataclass(frozen=True)
class EnableForwarding(Operation):
    def describe(self) -> str:
        return "enable IPv4 forwarding"


@dataclass(frozen=True)
class EnableForwardingV6(Operation):
    def describe(self) -> str:
        return "enable IPv6 forwarding"


@dataclass(frozen=True)
class EnableIpv6(Operation):
    """A bridge made with IPv6 switched off (disable_ipv6) gets it back before its
    gateway's IPv6 address is added."""

    name: str

    def describe(self) -> str:
        return f"enable IPv6 on {self.name}"


@dataclass(frozen=True)
class IgnoreAdverts(Operation):
    """A dual-stack network's bridge takes no address or route from the adverts it
    carries (accept_ra and autoconf off): the host is not a guest of its own network."""

    name: str

    def describe(self) -> str:
        return f"ignore router adverts on {self.name}"


# -- nftables ------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateNatTable(Operation):
    replace: bool

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return f"{verb} nftables table ip netcon (NAT maps, SNAT, isolation)"


@dataclass(frozen=True)
class AddSetElement(Operation):
    set_name: str
    value: str

    def describe(self) -> str:
        return f"add {self.value} to nftables set {self.set_name}"


@dataclass(frozen=True)
class DeleteSetElement(Operation):
    set_name: str
    value: str

    def describe(self) -> str:
        return f"remove {self.value} from nftables set {self.set_name}"


@dataclass(frozen=True)
class AddNatElement(Operation):
    floating: str
    fixed: str

    def describe(self) -> str:
        return f"add NAT element {self.floating} <-> {self.fixed}"


@dataclass(frozen=True)
class DeleteNatElement(Operation):
    floating: str
    fixed: str
    # A pair may be only half there (the table was edited by hand): delete what is.
    in_dnat: bool = True
    in_snat: bool = True

    def describe(self) -> str:
        return f"delete NAT element {self.floating} <-> {self.fixed}"


# -- DHCP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteHostsFile(Operation):
    bridge: str
    hosts: str
    opts: str
    # The names dnsmasq answers for (an addn-hosts file); None: leave it as it is.
    names: str | None = None

    def describe(self) -> str:
        count = len(self.hosts.splitlines())
        return f"write dnsmasq hosts file for {self.bridge} ({count} host(s))"


@dataclass(frozen=True)
class StartDnsmasq(Operation):
    bridge: str
    network_id: int
    argv: tuple[str, ...]
    # The running dnsmasq to replace (its command line is out of date), if any.
    replaces: int | None = None
    # Seconds a lease lasts: what the leases it learns at start are given.
    lease_time: int = 0
    # The leases the database knows, (MAC, IP, hostname): what it learns at start.
    leases: tuple[tuple[str, str, str], ...] = field(default=(), compare=False, repr=False)

    def describe(self) -> str:
        verb = "restart" if self.replaces is not None else "start"
        return f"{verb} dnsmasq for {self.bridge}"


@dataclass(frozen=True)
class ReloadDnsmasq(Operation):
    bridge: str
    pid: int

    def describe(self) -> str:
        return f"reload dnsmasq for {self.bridge} (SIGHUP pid {self.pid})"


@dataclass(frozen=True)
class ReleaseLeases(Operation):
    bridge: str
    leases: tuple[tuple[str, str], ...]  # (address, MAC)
    program: str  # dhcp_release, from dnsmasq-utils

    def describe(self) -> str:
        addresses = ", ".join(address for address, _ in self.leases)
        return f"release DHCP lease(s) of terminated instances on {self.bridge}: {addresses}"


@dataclass(frozen=True)
class ReleaseLeases6(Operation):
    """DHCPv6 leases whose address no instance holds now, or holds behind another MAC:
    released, so that the address's new owner (with a new DUID) gets it at once."""

    bridge: str
    leases: tuple[Lease6, ...]
    program: str  # dhcp_release6, from dnsmasq-utils

    def describe(self) -> str:
        addresses = ", ".join(lease.address for lease in self.leases)
        return f"release stale DHCPv6 lease(s) on {self.bridge}: {addresses}"


@dataclass(frozen=True)
class StopDnsmasq(Operation):
    bridge: str
    pid: int | None
    # More processes of this bridge's dnsmasq, found by their command line.
    strays: tuple[int, ...] = ()

    def describe(self) -> str:
        pids = ([self.pid] if self.pid else []) + list(self.strays)
        named = f" (pid {', '.join(map(str, pids))})" if pids else ""
        return f"stop dnsmasq for {self.bridge}{named}"


@dataclass(frozen=True)
class StopStrayDnsmasq(Operation):
    """Stop extra dnsmasq processes of a bridge that no pid file names (they would hold
    the DHCP socket of the one that is kept)."""

    bridge: str
    pids: tuple[int, ...]

    def describe(self) -> str:
        return (
            f"stop stray dnsmasq for {self.bridge} (pid {', '.join(map(str, self.pids))}, "
            "not the one its pid file names)"
        )


@dataclass(frozen=True)
class AdoptDnsmasq(Operation):
    """Write the pid file of a running dnsmasq of ours that lost it."""

    bridge: str
    pid: int

    def describe(self) -> str:
        return f"adopt dnsmasq for {self.bridge} (pid {self.pid}, which lost its pid file)"


# -- project VPNs (OpenVPN) --------------------------------------------------------------


@dataclass(frozen=True)
class StartVpn(Operation):
    """Start a project's OpenVPN server on its tap in the network's bridge."""

    spec: VpnSpec

    def describe(self) -> str:
        return (
            f"start VPN of project {self.spec.project} on udp {self.spec.endpoint} "
            f"({self.spec.tap} in {self.spec.bridge}, clients "
            f"{self.spec.pool_start}-{self.spec.pool_end})"
        )


@dataclass(frozen=True)
class StopVpn(Operation):
    """Stop a project's OpenVPN server and delete its tap; its PKI stays."""

    project: str
    reason: str

    def describe(self) -> str:
        return f"stop VPN of project {self.project} ({self.reason})"


VpnOperation = StartVpn | StopVpn


@dataclass(frozen=True)
class Plan:
    operations: tuple[Operation, ...] = ()
    # What stands in the way. Unless ``partial``, apply refuses before changing anything.
    problems: tuple[str, ...] = ()
    # Every problem concerns one network (a link in its way), whose operations were left
    # out: the rest applies, and the apply then reports the problems.
    partial: bool = False
    # The bridges of the networks held back.
    held: frozenset[str] = frozenset()
    # What an admin should know that the plan neither changes nor holds back: a bridge
    # port netcon closed, guests cut off from their DHCP server.
    warnings: tuple[str, ...] = ()
    # What to record once this plan is applied (see filter_record), for a full plan.
    filter_record: Record | None = None

    def __bool__(self) -> bool:
        return bool(self.operations)

    def describe(self) -> list[str]:
        return [op.describe() for op in self.operations]
