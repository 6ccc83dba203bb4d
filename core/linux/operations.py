"""The typed operations a plan is made of; each says in one line what it will do, in
which phase of an apply it is carried out, and how (``execute``)."""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar

from core.errors import HostError
from core.linux import dnsmasq, dnsmasq6, netlink, nft, sysctl

if TYPE_CHECKING:
    from core.linux.execution import Execution
    from core.linux.netlink import Request
    from core.linux.secgroups.record import Record
    from core.linux.vpn.spec import VpnSpec


class Phase(IntEnum):
    """The order an apply carries out its operations in, phase by phase.

    A VPN server sits on its project's bridge: it stops before links go and starts once
    bridges exist and are up. Servers and dnsmasq stop before the links and addresses
    they use go. Links are removed, then created, then configured (which needs the new
    links' indexes). The NAT and filter changes go as one nft batch once the links
    exist; uplinks enter hairpin mode only once that batch lets NATed frames alone back
    out. Up to FORGET_MAPPINGS a failure takes back what the apply made in the kernel.
    The multi-host segment filter, then the metadata DNAT of both families and the IPv6
    metadata address on the bridges, then the host input filter (what guests reach of
    the host itself), go before dnsmasq starts: each running dnsmasq
    reads every interface's addresses again for each address added, and its first
    advert already has the filter. Daemons come last, once the addresses they bind to exist,
    and one that fails is reported without taking back the kernel work. The metadata
    server (a Python process and its imports) is launched once every dnsmasq serves,
    and waited for after the follow-ups: launched beside them, its imports took the
    CPU the dnsmasq starts needed (40 of them took three times as long on two cores),
    and it listens before its heavier imports, which then no longer hold up an apply.
    """

    STOP_VPNS = 10
    STOP_METADATA = 20
    STOP_DNSMASQ = 30
    REMOVE_LINKS = 40
    CREATE_LINKS = 50
    ENABLE_IPV6 = 60
    IGNORE_ADVERTS = 65
    CONFIGURE_LINKS = 70
    FORWARDING = 80
    PREPARE_FILTER = 90
    NFT = 100
    HAIRPIN_UPLINKS = 110
    FORGET_MAPPINGS = 120
    # -- a failure from here on leaves the kernel work in place
    IPV6_SIDE = 125
    METADATA_TABLE = 126
    HOST_INPUT = 127
    # -- daemons
    ANNOUNCE = 130
    DHCP = 140
    LAUNCH_METADATA = 145
    DHCP_FOLLOW_UP = 150
    WAIT_METADATA = 170
    START_VPNS = 180


# The last phase whose failure takes back what the apply made in the kernel.
LAST_KERNEL_PHASE = Phase.FORGET_MAPPINGS


@dataclass(frozen=True)
class Operation:
    phase: ClassVar[Phase]

    def describe(self) -> str:
        raise NotImplementedError

    def execute(self, run: Execution) -> None:
        """Carry it out, or add it to its phase's batch (sent at the phase's end)."""
        raise NotImplementedError

    def links(self) -> tuple[str, ...]:
        """The links it names, whose indexes the apply looks up."""
        return ()

    def needs_lease(self) -> bool:
        """Whether it gives something the heartbeat lease's lifetime."""
        return False

    def undo(self, index: dict[str, int]) -> list[Request]:
        """What takes it back once sent, if a later kernel phase fails."""
        return []

    def explain(self, code: int) -> str:
        """Why it failed, given the kernel's error number."""
        return f"{self.describe()}: {os.strerror(code)}"


# -- links and addresses (netlink) -------------------------------------------------


@dataclass(frozen=True)
class CreateLink(Operation):
    """A link netcon creates; marked as netcon's (and enslaved) as links are configured."""

    phase = Phase.CREATE_LINKS
    name: str

    def links(self) -> tuple[str, ...]:
        return (self.name,)

    def execute(self, run: Execution) -> None:
        run.created.append(self.name)
        run.created_names.add(self.name)
        run.creations.add(self, self.request(run))

    def request(self, run: Execution) -> Request:
        raise NotImplementedError


@dataclass(frozen=True)
class CreateBridge(CreateLink):
    def describe(self) -> str:
        return f"create bridge {self.name}"

    def request(self, run: Execution) -> Request:
        return netlink.new_link(self.name, "bridge", address=netlink.bridge_address())


@dataclass(frozen=True)
class CreateVxlan(CreateLink):
    vni: int
    parent: str
    group: str
    port: int

    def describe(self) -> str:
        return f"create VXLAN {self.name} (VNI {self.vni}) over {self.parent}, group {self.group}"

    def links(self) -> tuple[str, ...]:
        return (self.name, self.parent)

    def request(self, run: Execution) -> Request:
        data = netlink.vxlan_data(self.vni, self.group, run.index()[self.parent], self.port)
        return netlink.new_link(self.name, "vxlan", data=data)


@dataclass(frozen=True)
class CreateVlan(CreateLink):
    vlan_id: int
    parent: str
    network: str

    def describe(self) -> str:
        return f"create 802.1Q VLAN {self.name} (id {self.vlan_id}) on {self.parent}"

    def links(self) -> tuple[str, ...]:
        return (self.name, self.parent)

    def request(self, run: Execution) -> Request:
        data = netlink.vlan_data(self.vlan_id)
        return netlink.new_link(self.name, "vlan", link=run.index()[self.parent], data=data)

    def explain(self, code: int) -> str:
        if code == errno.EOPNOTSUPP:
            return (
                f"network {self.network}: this kernel has no 802.1Q VLAN support ({self.name} "
                f"on {self.parent}: {os.strerror(code)}); create the network with "
                '--segmentation vxlan, or set segmentation = "vxlan" in netcon.toml'
            )
        return super().explain(code)


@dataclass(frozen=True)
class SetMaster(Operation):
    phase = Phase.CONFIGURE_LINKS
    port: str
    bridge: str

    def describe(self) -> str:
        return f"enslave {self.port} to {self.bridge}"

    def links(self) -> tuple[str, ...]:
        return (self.port, self.bridge)

    def execute(self, run: Execution) -> None:
        if self.port in run.created_names:
            run.masters[self.port] = self.bridge  # enslaved as it is marked
            return
        index = run.index()
        run.configure.add(self, netlink.set_link(index[self.port], master=index[self.bridge]))


@dataclass(frozen=True)
class ClaimLink(Operation):
    """Mark a link netcon created as its own (an interrupted apply could not)."""

    phase = Phase.CONFIGURE_LINKS
    name: str

    def describe(self) -> str:
        return f"mark {self.name} as netcon's"

    def links(self) -> tuple[str, ...]:
        return (self.name,)

    def execute(self, run: Execution) -> None:
        run.configure.add(self, run.claim(self.name))


@dataclass(frozen=True)
class SetUp(Operation):
    phase = Phase.CONFIGURE_LINKS
    name: str

    def describe(self) -> str:
        return f"set {self.name} up"

    def links(self) -> tuple[str, ...]:
        return (self.name,)

    def execute(self, run: Execution) -> None:
        run.configure.add(self, netlink.set_link(run.index()[self.name], up=True))


@dataclass(frozen=True)
class SetMtu(Operation):
    """A network's bridge, segment link or instance port at the network's MTU."""

    phase = Phase.CONFIGURE_LINKS
    name: str
    mtu: int

    def describe(self) -> str:
        return f"set MTU of {self.name} to {self.mtu}"

    def links(self) -> tuple[str, ...]:
        return (self.name,)

    def execute(self, run: Execution) -> None:
        run.configure.add(self, netlink.set_link(run.index()[self.name], mtu=self.mtu))


@dataclass(frozen=True)
class SetHairpin(Operation):
    """An instance port of a bridge this host routes for in hairpin mode: a connection
    from the instance to its own floating IP, once NATed, goes back out that port."""

    phase = Phase.CONFIGURE_LINKS
    name: str

    def describe(self) -> str:
        return f"set hairpin mode on {self.name}"

    def links(self) -> tuple[str, ...]:
        return (self.name,)

    def execute(self, run: Execution) -> None:
        run.configure.add(self, netlink.set_port(run.index()[self.name], hairpin=True))


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

    @property
    def phase(self) -> Phase:  # type: ignore[override]
        # Cleared before the nft batch drops its element, set once it is in.
        return Phase.HAIRPIN_UPLINKS if self.on else Phase.CONFIGURE_LINKS

    def links(self) -> tuple[str, ...]:
        return (self.name,)

    def execute(self, run: Execution) -> None:
        if self.on:
            run.uplinks.add(self, netlink.set_port(run.index()[self.name], hairpin=True))
        else:
            run.configure.add(self, netlink.set_port(run.index()[self.name], hairpin=False))


@dataclass(frozen=True)
class AddAddress(Operation):
    ifname: str
    address: str
    prefixlen: int
    broadcast: str | None = None
    label: str | None = None
    # It lasts as long as this host's heartbeat lease (the kernel deletes it then).
    leased: bool = False

    phase = Phase.CONFIGURE_LINKS

    def describe(self) -> str:
        return f"add address {self.address}/{self.prefixlen} to {self.ifname}"

    def links(self) -> tuple[str, ...]:
        return (self.ifname,)

    def needs_lease(self) -> bool:
        return self.leased

    def execute(self, run: Execution) -> None:
        index = run.index()[self.ifname]
        lifetime = run.address_lifetime() if self.leased else None
        run.configure.add(
            self,
            netlink.new_addr(
                index,
                self.address,
                self.prefixlen,
                broadcast=self.broadcast,
                label=self.label,
                lifetime=lifetime,
            ),
        )
        if self.leased:
            run.leased.append(netlink.del_addr(index, self.address, self.prefixlen))
        # ARP is IPv4's; an IPv6 neighbour learns from the router adverts.
        if ":" not in self.address:
            run.announced.setdefault(self.ifname, []).append(self.address)

    def undo(self, index: dict[str, int]) -> list[Request]:
        return [netlink.del_addr(index[self.ifname], self.address, self.prefixlen)]


@dataclass(frozen=True)
class SetAddressLifetime(Operation):
    """An address that is where it should be, with the wrong kind of lifetime: forever
    where it should last as long as the heartbeat lease, or the other way round."""

    ifname: str
    address: str
    prefixlen: int
    leased: bool

    phase = Phase.CONFIGURE_LINKS

    def describe(self) -> str:
        where = f"address {self.address}/{self.prefixlen} on {self.ifname}"
        if self.leased:
            return f"let {where} last only as long as this host's heartbeat lease"
        return f"make {where} permanent (fencing is off)"

    def links(self) -> tuple[str, ...]:
        return (self.ifname,)

    def needs_lease(self) -> bool:
        return self.leased

    def execute(self, run: Execution) -> None:
        index = run.index()
        if self.ifname not in index:
            return
        lifetime = run.address_lifetime() if self.leased else None
        at = index[self.ifname]
        run.configure.add(
            self, netlink.set_addr_lifetime(at, self.address, self.prefixlen, lifetime)
        )
        if self.leased:
            run.leased.append(netlink.del_addr(at, self.address, self.prefixlen))


@dataclass(frozen=True)
class RenewLease(Operation):
    """Extend the lifetime of addresses that carry the heartbeat lease to the lease just
    renewed. Not a difference between the host and the database: only a process that has
    just renewed the heartbeat makes one (the agent, after each heartbeat)."""

    addresses: tuple[tuple[str, str, int], ...]  # (ifname, address, prefixlen)
    # VPN taps whose element in table bridge netcon carries the lease.
    ports: tuple[str, ...] = ()

    phase = Phase.CONFIGURE_LINKS

    def describe(self) -> str:
        ports = f" and {len(self.ports)} VPN port(s)" if self.ports else ""
        return f"renew the heartbeat lease of {len(self.addresses)} address(es){ports}"

    def links(self) -> tuple[str, ...]:
        return tuple(ifname for ifname, _, _ in self.addresses)

    def needs_lease(self) -> bool:
        return True

    def execute(self, run: Execution) -> None:
        index = run.index()
        for ifname, address, prefixlen in self.addresses:
            if ifname in index:
                lifetime = run.address_lifetime()
                at = index[ifname]
                run.configure.add(self, netlink.set_addr_lifetime(at, address, prefixlen, lifetime))
                run.leased.append(netlink.del_addr(at, address, prefixlen))
        # The VPN taps' elements get the lease's lifetime in the nft batch.
        run.renewed_ports += self.ports
        run.leased_ports += self.ports


@dataclass(frozen=True)
class DeleteAddress(Operation):
    phase = Phase.REMOVE_LINKS
    ifname: str
    address: str
    prefixlen: int

    def describe(self) -> str:
        return f"delete address {self.address}/{self.prefixlen} from {self.ifname}"

    def links(self) -> tuple[str, ...]:
        return (self.ifname,)

    def execute(self, run: Execution) -> None:
        index = run.index()
        if self.ifname in index:
            request = netlink.del_addr(index[self.ifname], self.address, self.prefixlen)
            run.removals.add(self, request)


@dataclass(frozen=True)
class DeleteLink(Operation):
    phase = Phase.REMOVE_LINKS
    name: str

    def describe(self) -> str:
        return f"delete link {self.name}"

    def links(self) -> tuple[str, ...]:
        return (self.name,)

    def execute(self, run: Execution) -> None:
        index = run.index()
        if self.name in index:
            run.removals.add(self, netlink.del_link(index[self.name]))


@dataclass(frozen=True)
class EnableForwarding(Operation):
    phase = Phase.FORWARDING

    def describe(self) -> str:
        return "enable IPv4 forwarding"

    def execute(self, run: Execution) -> None:
        sysctl.enable_forwarding(run.netns)


@dataclass(frozen=True)
class EnableForwardingV6(Operation):
    phase = Phase.FORWARDING

    def describe(self) -> str:
        return "enable IPv6 forwarding"

    def execute(self, run: Execution) -> None:
        sysctl.enable_forwarding_v6(run.netns)


@dataclass(frozen=True)
class EnableIpv6(Operation):
    """A bridge made with IPv6 switched off (disable_ipv6) gets it back before its
    gateway's IPv6 address is added."""

    name: str

    phase = Phase.ENABLE_IPV6

    def describe(self) -> str:
        return f"enable IPv6 on {self.name}"

    def execute(self, run: Execution) -> None:
        sysctl.enable_ipv6(run.netns, self.name)


@dataclass(frozen=True)
class IgnoreAdverts(Operation):
    """A dual-stack network's bridge takes no address or route from the adverts it
    carries (accept_ra and autoconf off): the host is not a guest of its own network."""

    name: str

    phase = Phase.IGNORE_ADVERTS

    def describe(self) -> str:
        return f"ignore router adverts on {self.name}"

    def execute(self, run: Execution) -> None:
        # Gathered: the phase's end sets every bridge's in one pass through the namespace.
        run.ignoring_adverts.append(self.name)


# -- nftables ------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateNatTable(Operation):
    phase = Phase.NFT
    replace: bool

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return f"{verb} nftables table ip netcon (NAT maps, SNAT, isolation)"

    def execute(self, run: Execution) -> None:
        run.nat_commands += nft.table_commands(self.replace)
        run.nat_marker.parent.mkdir(parents=True, exist_ok=True)
        run.nat_marker.touch()


@dataclass(frozen=True)
class AddSetElement(Operation):
    phase = Phase.NFT
    set_name: str
    value: str

    def describe(self) -> str:
        return f"add {self.value} to nftables set {self.set_name}"

    def execute(self, run: Execution) -> None:
        value = nft.set_element(self.set_name, self.value)
        run.nat_commands.append(nft.element_command("add", self.set_name, [value]))


@dataclass(frozen=True)
class DeleteSetElement(Operation):
    phase = Phase.NFT
    set_name: str
    value: str

    def describe(self) -> str:
        return f"remove {self.value} from nftables set {self.set_name}"

    def execute(self, run: Execution) -> None:
        value = nft.set_element(self.set_name, self.value)
        run.nat_commands.append(nft.element_command("delete", self.set_name, [value]))


@dataclass(frozen=True)
class AddNatElement(Operation):
    phase = Phase.NFT
    floating: str
    fixed: str

    def describe(self) -> str:
        return f"add NAT element {self.floating} <-> {self.fixed}"

    def execute(self, run: Execution) -> None:
        pair = [[self.floating, self.fixed]]
        run.nat_commands.append(nft.element_command("add", nft.DNAT_MAP, pair))
        run.nat_commands.append(
            nft.element_command("add", nft.SNAT_MAP, [[self.fixed, self.floating]])
        )


@dataclass(frozen=True)
class DeleteNatElement(Operation):
    phase = Phase.NFT
    floating: str
    fixed: str
    # A pair may be only half there (the table was edited by hand): delete what is.
    in_dnat: bool = True
    in_snat: bool = True

    def describe(self) -> str:
        return f"delete NAT element {self.floating} <-> {self.fixed}"

    def execute(self, run: Execution) -> None:
        if self.in_dnat:
            run.nat_commands.append(nft.element_command("delete", nft.DNAT_MAP, [self.floating]))
        if self.in_snat:
            run.nat_commands.append(nft.element_command("delete", nft.SNAT_MAP, [self.fixed]))
        # Its tracked connections go once the pair is out of the kernel.
        run.forgotten.append(self.floating)


# -- DHCP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteHostsFile(Operation):
    bridge: str
    hosts: str
    opts: str
    # The names dnsmasq answers for (an addn-hosts file); None: leave it as it is.
    names: str | None = None

    phase = Phase.DHCP

    def describe(self) -> str:
        count = len(self.hosts.splitlines())
        return f"write dnsmasq hosts file for {self.bridge} ({count} host(s))"

    def execute(self, run: Execution) -> None:
        files = run.dhcp_files(self.bridge)
        run.dhcp_file(self.bridge, files.opts, self.opts)
        if self.names is not None:
            run.dhcp_file(self.bridge, files.names, self.names)
        run.dhcp_file(self.bridge, files.hosts, self.hosts)


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

    phase = Phase.DHCP

    def describe(self) -> str:
        verb = "restart" if self.replaces is not None else "start"
        return f"{verb} dnsmasq for {self.bridge}"

    def execute(self, run: Execution) -> None:
        """Its files now; the process with every other start, at the phase's end."""
        files = run.dhcp_files(self.bridge)
        run.lease_script()
        text = dnsmasq.leases_text(self.leases, self.lease_time, time.time())
        run.dhcp_file(self.bridge, files.leases, text)
        known = "".join(f"{mac} {address}\n" for mac, address, _ in self.leases)
        run.dhcp_file(self.bridge, files.leased, known)
        # A new dnsmasq starts with no DHCPv6 lease.
        files.leases6.unlink(missing_ok=True)
        if self.replaces is None:
            run.idle_dnsmasq.add(self.bridge)
        else:
            run.replaced.append(self.replaces)
        env = dict(
            run.dnsmasq_env,
            NETWORK_ID=str(self.network_id),
            DHCP_LEASE_TIME=str(self.lease_time),
            NETCON_LEASES=str(files.leases),
        )
        run.dnsmasq_starts.append(dnsmasq.Start(files, self.argv, env))


@dataclass(frozen=True)
class ReloadDnsmasq(Operation):
    phase = Phase.DHCP_FOLLOW_UP
    bridge: str
    pid: int

    def describe(self) -> str:
        return f"reload dnsmasq for {self.bridge} (SIGHUP pid {self.pid})"

    def execute(self, run: Execution) -> None:
        dnsmasq.reload(self.pid)


@dataclass(frozen=True)
class ReleaseLeases(Operation):
    phase = Phase.DHCP_FOLLOW_UP
    bridge: str
    leases: tuple[tuple[str, str], ...]  # (address, MAC)
    program: str  # dhcp_release, from dnsmasq-utils

    def describe(self) -> str:
        addresses = ", ".join(address for address, _ in self.leases)
        return f"release DHCP lease(s) of terminated instances on {self.bridge}: {addresses}"

    def execute(self, run: Execution) -> None:
        dnsmasq.release_leases(run.netns, self.program, self.bridge, self.leases)


@dataclass(frozen=True)
class ReleaseLeases6(Operation):
    """DHCPv6 leases whose address no instance holds now, or holds behind another MAC:
    released, so that the address's new owner (with a new DUID) gets it at once."""

    bridge: str
    leases: tuple[dnsmasq6.Lease6, ...]
    program: str  # dhcp_release6, from dnsmasq-utils

    phase = Phase.DHCP_FOLLOW_UP

    def describe(self) -> str:
        addresses = ", ".join(lease.address for lease in self.leases)
        return f"release stale DHCPv6 lease(s) on {self.bridge}: {addresses}"

    def execute(self, run: Execution) -> None:
        failures = dnsmasq6.release_leases(run.netns, self.program, self.bridge, self.leases)
        # Forgotten even when dnsmasq would not release one (a lease of a server DUID it
        # no longer has): asking again at every apply would not help, and such a lease
        # runs out by itself.
        leases6 = dnsmasq.DhcpFiles(run.dhcp_dir, self.bridge).leases6
        held = leases6.read_text() if leases6.exists() else None
        dnsmasq.write_atomically(leases6, dnsmasq6.without(held, self.leases))
        # Reported with the daemons that failed; the apply goes on.
        run.failures += failures


@dataclass(frozen=True)
class StopDnsmasq(Operation):
    phase = Phase.STOP_DNSMASQ
    bridge: str
    pid: int | None
    # More processes of this bridge's dnsmasq, found by their command line.
    strays: tuple[int, ...] = ()

    def describe(self) -> str:
        pids = ([self.pid] if self.pid else []) + list(self.strays)
        named = f" (pid {', '.join(map(str, pids))})" if pids else ""
        return f"stop dnsmasq for {self.bridge}{named}"

    def execute(self, run: Execution) -> None:
        run.stopped_dnsmasq += ([self.pid] if self.pid is not None else []) + list(self.strays)
        run.dhcp_gone.append(self.bridge)


@dataclass(frozen=True)
class StopStrayDnsmasq(Operation):
    """Stop extra dnsmasq processes of a bridge that no pid file names (they would hold
    the DHCP socket of the one that is kept)."""

    bridge: str
    pids: tuple[int, ...]

    phase = Phase.STOP_DNSMASQ

    def describe(self) -> str:
        return (
            f"stop stray dnsmasq for {self.bridge} (pid {', '.join(map(str, self.pids))}, "
            "not the one its pid file names)"
        )

    def execute(self, run: Execution) -> None:
        run.stopped_dnsmasq += self.pids


@dataclass(frozen=True)
class AdoptDnsmasq(Operation):
    """Write the pid file of a running dnsmasq of ours that lost it."""

    bridge: str
    pid: int

    phase = Phase.DHCP_FOLLOW_UP

    def describe(self) -> str:
        return f"adopt dnsmasq for {self.bridge} (pid {self.pid}, which lost its pid file)"

    def execute(self, run: Execution) -> None:
        dnsmasq.adopt(dnsmasq.DhcpFiles(run.dhcp_dir, self.bridge), self.pid)


# -- project VPNs (OpenVPN) --------------------------------------------------------------


@dataclass(frozen=True)
class StartVpn(Operation):
    """Start a project's OpenVPN server on its tap in the network's bridge."""

    spec: VpnSpec

    phase = Phase.START_VPNS

    def describe(self) -> str:
        return (
            f"start VPN of project {self.spec.project} on udp {self.spec.endpoint} "
            f"({self.spec.tap} in {self.spec.bridge}, clients "
            f"{self.spec.pool_start}-{self.spec.pool_end})"
        )

    def execute(self, run: Execution) -> None:
        # Imported on use: the VPN's host code pulls in cryptography.
        from core.linux.vpn import server

        try:
            files = server.ServerFiles(run.state_dir, self.spec.project, run.netns)
            server.start(files, self.spec)
        except HostError as exc:
            run.failures.append(str(exc))  # the others still start


@dataclass(frozen=True)
class StopVpn(Operation):
    """Stop a project's OpenVPN server and delete its tap; its PKI stays."""

    project: str
    reason: str

    phase = Phase.STOP_VPNS

    def describe(self) -> str:
        return f"stop VPN of project {self.project} ({self.reason})"

    def execute(self, run: Execution) -> None:
        from core.linux.vpn import server

        server.stop(server.ServerFiles(run.state_dir, self.project, run.netns))


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
    # What to record once this plan is applied (see secgroups/record.py), for a full plan.
    filter_record: Record | None = None

    def __bool__(self) -> bool:
        return bool(self.operations)

    def describe(self) -> list[str]:
        return [op.describe() for op in self.operations]
