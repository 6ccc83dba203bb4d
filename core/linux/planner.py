"""plan(desired, observed): the operations that make the host match the database.

netcon only plans changes to what it owns (links with its alias, addresses on them,
floating addresses with its label, its nftables table, dnsmasq processes with pid
files in its state directory). Anything else in the way is a problem. One that
concerns a single network (a link of another program where its bridge or segment
should be) holds back that network alone: its operations are left out and the rest of
the host is still brought in line. Any other problem stops the whole apply before it
starts, so nothing is left half-made.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path

from core.linux import closedports, dnsmasq, dnsmasq6, heldback, nft
from core.linux.desired import DesiredHost, DesiredNetwork
from core.linux.netlink import Link
from core.linux.observed import FLOATING_LABEL, OWNER_ALIAS, ObservedHost
from core.linux.operations import (
    AddAddress,
    AddNatElement,
    AddSetElement,
    AdoptDnsmasq,
    ClaimLink,
    CreateBridge,
    CreateNatTable,
    CreateVlan,
    CreateVxlan,
    DeleteAddress,
    DeleteLink,
    DeleteNatElement,
    DeleteSetElement,
    EnableForwarding,
    EnableForwardingV6,
    EnableIpv6,
    IgnoreAdverts,
    Operation,
    Plan,
    ReleaseLeases,
    ReleaseLeases6,
    ReloadDnsmasq,
    SetAddressLifetime,
    SetHairpin,
    SetMaster,
    SetMtu,
    SetUp,
    SetUplinkHairpin,
    StartDnsmasq,
    StopDnsmasq,
    StopStrayDnsmasq,
    WriteHostsFile,
)
from core.linux.secgroups import plan as filter_plan
from core.linux.secgroups import record as filter_record
from core.linux.wanted import WholeHostNeeded


@dataclass(frozen=True)
class PlanContext:
    dhcp_dir: Path
    # Absolute path of dnsmasq, or None when it is not installed.
    dnsmasq_path: str | None
    dnsmasq_binary: str
    nft_binary: str
    # dhcp_release (dnsmasq-utils), or None: released leases then simply run out.
    dhcp_release_path: str | None = None
    # dhcp_release6 (dnsmasq-utils), or None: a stale DHCPv6 lease then runs out.
    dhcp_release6_path: str | None = None
    # Gateway and floating addresses carry this host's heartbeat lease (see lease.py).
    leased: bool = False
    # Ports that pass on netcon's bridges though nothing here owns them.
    trusted_ports: tuple[str, ...] = ()
    # Whether this kernel can make 802.1Q links (some are built without it).
    vlan_supported: bool = True


class _Builder:
    def __init__(
        self,
        desired: DesiredHost,
        observed: ObservedHost,
        leased: bool = False,
        vlan_supported: bool = True,
    ) -> None:
        self.desired = desired
        self.observed = observed
        self.leased = leased
        self.vlan_supported = vlan_supported
        self.links = observed.links
        self.stops: list[Operation] = []
        self.deletes: list[Operation] = []
        self.creates: list[Operation] = []
        self.configures: list[Operation] = []
        self.adds: list[Operation] = []
        self.after: list[Operation] = []
        self.problems: list[str] = []
        self.warnings: list[str] = []
        # Bridges of networks held back by a problem of their own.
        self.held: set[str] = set()
        self.wanted_links: set[str] = set()
        self.wanted_addresses: set[tuple[str, str, int]] = set()
        by_index = observed.by_index()
        self.address_homes: dict[str, list[tuple[Link | None, int, str | None, bool]]] = {}
        for a in observed.addresses:
            self.address_homes.setdefault(a.address, []).append(
                (by_index.get(a.index), a.prefixlen, a.label, a.permanent)
            )

    def lists(self) -> list[list[Operation]]:
        return [self.stops, self.deletes, self.creates, self.configures, self.adds, self.after]

    def operations(self) -> tuple[Operation, ...]:
        return tuple(
            self.stops + self.deletes + self.creates + self.configures + self.adds + self.after
        )

    # -- links -------------------------------------------------------------------------

    def keep(self, net: DesiredNetwork) -> None:
        """A held-back network's links of netcon's, and their addresses, stay as they
        are: its problem may have stopped its plan before it named them wanted (a
        missing vlan_interface, a bridge turned into another kind of link)."""
        names = {net.bridge} | ({net.segment.ifname} if net.segment is not None else set())
        kept = {
            name: link
            for name in names
            if (link := self.links.get(name)) is not None and self.observed.owns(link)
        }
        self.wanted_links.update(kept)
        homes = {link.index: name for name, link in kept.items()}
        self.wanted_addresses.update(
            (homes[a.index], a.address, a.prefixlen)
            for a in self.observed.addresses
            if a.index in homes
        )

    def network(self, net: DesiredNetwork) -> None:
        bridge = self.links.get(net.bridge)
        if bridge is None:
            if not net.owns_bridge:
                self.problems.append(
                    f"Flat network {net.cidr}: bridge {net.bridge} does not exist; netcon uses "
                    "the admin's bridge for Flat networks and never creates it"
                )
                return
            self.creates.append(CreateBridge(net.bridge))
            self.wanted_links.add(net.bridge)
        elif bridge.kind != "bridge":
            self.problems.append(
                f"network {net.cidr}: {net.bridge} exists but is a {bridge.kind or 'plain'} "
                "link, not a bridge"
            )
            return
        else:
            if self.observed.owns(bridge):
                self.wanted_links.add(net.bridge)
            if not bridge.up and net.owns_bridge:
                self.configures.append(SetUp(net.bridge))
        if net.segment is not None:
            self._segment(net, bridge)
        self._mtu(net)
        if net.bridge_interface is not None:
            port = self.links.get(net.bridge_interface)
            if port is None:
                self.problems.append(
                    f"network {net.cidr}: bridge_interface {net.bridge_interface} does not exist"
                )
            else:
                if bridge is None or port.master != bridge.index:
                    self.configures.append(SetMaster(net.bridge_interface, net.bridge))
                if not port.up:
                    self.configures.append(SetUp(net.bridge_interface))
        self._uplink(net)
        self._uplink_hairpin(net, bridge)
        self._deaf_to_adverts(net, bridge)
        if net.gateway is not None:
            self._hairpin(net, bridge)
            self._address(
                net.bridge,
                net.gateway,
                net.prefixlen,
                net.broadcast,
                None,
                f"gateway of {net.cidr}",
            )
            if net.ipv6 is not None:
                self._ipv6_gateway(net, bridge)

    def _ipv6_gateway(self, net: DesiredNetwork, bridge: Link | None) -> None:
        """The /64's gateway on the bridge, which must have IPv6 switched on for it."""
        assert net.ipv6 is not None
        off = self.observed.ipv6_off
        if net.bridge in off or (bridge is None and "default" in off):
            self.configures.append(EnableIpv6(net.bridge))
        prefixlen = ipaddress.IPv6Network(net.ipv6.cidr).prefixlen
        self._address(
            net.bridge, net.ipv6.gateway, prefixlen, None, None, f"gateway of {net.ipv6.cidr}"
        )

    def _deaf_to_adverts(self, net: DesiredNetwork, bridge: Link | None) -> None:
        if not net.dual_stack or not net.owns_bridge:
            return
        hearing = self.observed.hearing_adverts
        if net.bridge in hearing or (bridge is None and "default" in hearing):
            self.configures.append(IgnoreAdverts(net.bridge))

    def _mtu(self, net: DesiredNetwork) -> None:
        """The bridge, segment link and instance ports at the network's MTU: a frame the
        guest may send must fit through every one of them (and the segment's header)."""
        if net.mtu is None or not net.owns_bridge:
            return
        names = [net.bridge]
        if net.segment is not None:
            names.append(net.segment.ifname)
        names += net.ports
        recreated = {op.name for op in self.deletes if isinstance(op, DeleteLink)}
        for name in names:
            link = self.links.get(name)
            # A link made by this apply (a port not there yet is left for a later one).
            made = name in recreated or (link is None and name in self.wanted_links)
            if made or (link is not None and link.mtu != net.mtu):
                self.configures.append(SetMtu(name, net.mtu))

    def _uplink(self, net: DesiredNetwork) -> None:
        """A FlatDHCP network another host serves reaches this host's guests only through
        an interface in its bridge (it has no segment): without one they get nothing."""
        if (
            not net.serves_dhcp
            or net.dhcp is not None
            or net.network_host in (None, self.desired.host)
            or net.segment is not None
            or net.bridge_interface is not None
        ):
            return
        self.warnings.append(
            f"FlatDHCP network {net.cidr}: its bridge {net.bridge} on this host has no link "
            f"to {net.network_host}, which serves its DHCP and gateway, so the guests here "
            f"({len(net.ports)} port(s)) get no address; set flat_interface in this host's "
            "netcon.toml to the interface that reaches it"
        )

    def _hairpin(self, net: DesiredNetwork, bridge: Link | None) -> None:
        """Instance ports in hairpin mode where this host NATs floating IPs: an instance
        calling its own floating IP is answered through the port it called from."""
        if bridge is None:
            return
        for name in net.ports:
            port = self.links.get(name)
            if port is not None and port.master == bridge.index and not port.hairpin:
                self.configures.append(SetHairpin(name))

    def _uplink_hairpin(self, net: DesiredNetwork, bridge: Link | None) -> None:
        """The uplink of a bridge this host routes for in hairpin mode, and out of it
        where another host routes (see SetUplinkHairpin)."""
        if not net.owns_bridge:
            return
        name = net.segment.ifname if net.segment is not None else net.bridge_interface
        if name is None:
            return
        link = self.links.get(name)
        if net.gateway is None:
            if link is not None and link.hairpin:
                self.configures.append(SetUplinkHairpin(name, on=False))
            return
        if link is None and net.segment is None:
            return  # a missing bridge_interface is a problem of its own
        enslaved = link is not None and bridge is not None and link.master == bridge.index
        if not (enslaved and link is not None and link.hairpin):
            self.after.append(SetUplinkHairpin(name))

    def _segment(self, net: DesiredNetwork, bridge: Link | None) -> None:
        segment = net.segment
        assert segment is not None
        name = segment.ifname
        parent = self.links.get(segment.parent)
        if parent is None:
            self.problems.append(
                f"network {net.cidr}: vlan_interface {segment.parent} does not exist "
                f"(it carries {name})"
            )
            return
        current = self.links.get(name)
        create = current is None
        if current is not None:
            if not self.observed.owns(current):
                self.problems.append(
                    f"network {net.cidr}: {name} exists and is not netcon's; "
                    "remove it or give the network another segment id"
                )
                return
            if (
                current.kind != segment.kind
                or current.segment_id != segment.id
                or current.parent != parent.index
            ):
                self.deletes.append(DeleteLink(name))
                create = True
        if create and segment.kind == "vlan" and not self.vlan_supported:
            # Held back like a clash: the kernel would refuse the link, and the rest of
            # the host must not wait for it.
            self.problems.append(
                f"network {net.cidr}: this kernel has no 802.1Q VLAN support, so {name} "
                f"cannot be made on {segment.parent}; give the network a VXLAN segment "
                f"(netcon network modify {net.cidr} --segmentation vxlan)"
            )
            return
        self.wanted_links.add(name)
        if create:
            if segment.kind == "vlan":
                self.creates.append(CreateVlan(name, segment.id, segment.parent, net.cidr))
            else:
                self.creates.append(
                    CreateVxlan(
                        name,
                        segment.id,
                        segment.parent,
                        self.desired.vxlan_group,
                        self.desired.vxlan_port,
                    )
                )
            self.configures.append(SetMaster(name, net.bridge))
            return
        assert current is not None
        if bridge is None or current.master != bridge.index:
            self.configures.append(SetMaster(name, net.bridge))
        if not current.up:
            self.configures.append(SetUp(name))

    def _address(
        self,
        ifname: str,
        address: str,
        prefixlen: int,
        broadcast: str | None,
        label: str | None,
        what: str,
    ) -> None:
        self.wanted_addresses.add((ifname, address, prefixlen))
        present = False
        for link, have_prefix, have_label, permanent in self.address_homes.get(address, []):
            if link is not None and link.name == ifname and have_prefix == prefixlen:
                present = True
                # Only the kind of lifetime is compared: renewing a lease is the agent's
                # heartbeat, not a difference (a plan would never be empty otherwise).
                if permanent == self.leased:
                    self.configures.append(
                        SetAddressLifetime(ifname, address, prefixlen, self.leased)
                    )
                continue
            home = link.name if link is not None else "an unknown interface"
            ours = link is not None and (
                self.observed.owns(link) or (label is not None and have_label == label)
            )
            if not ours:
                self.problems.append(
                    f"address {address} ({what}) is already on {home}, which netcon does not own"
                )
                return
            # Ours but in the wrong place: it goes with its link or is deleted below.
        if not present:
            self.adds.append(
                AddAddress(ifname, address, prefixlen, broadcast, label, leased=self.leased)
            )

    def floating(self) -> None:
        needed = set(self.desired.public_interfaces)
        for name in sorted(needed):
            if name not in self.links:
                self.problems.append(
                    f"public interface {name} does not exist (floating IPs and SNAT use it; "
                    "set public_interface or the floating range's --interface)"
                )
                return
        for pair in self.desired.floating:
            self._address(pair.interface, pair.floating, 32, None, FLOATING_LABEL, "a floating IP")

    def cleanup_links(self) -> None:
        by_index = self.observed.by_index()
        for name in sorted(self.wanted_links & self.observed.journal):
            link = self.links.get(name)
            if link is not None and link.alias != OWNER_ALIAS:
                self.configures.append(ClaimLink(name))
        deleted = {op.name for op in self.deletes if isinstance(op, DeleteLink)}
        # A scoped plan removes only what its scope covers, whatever else it saw.
        reach = self.desired.reach
        for link in self.links.values():
            if reach is not None and link.name not in reach.links:
                continue
            if self.observed.owns(link) and link.name not in self.wanted_links:
                self.deletes.append(DeleteLink(link.name))
                deleted.add(link.name)
        for a in self.observed.addresses:
            home = by_index.get(a.index)
            if home is None or home.name in deleted:
                continue
            outside = reach is not None and home.name not in reach.links
            if outside and a.address not in reach.floating:  # type: ignore[union-attr]
                continue
            key = (home.name, a.address, a.prefixlen)
            if key in self.wanted_addresses:
                continue
            if self.observed.owns(home) or a.label == FLOATING_LABEL:
                self.deletes.insert(0, DeleteAddress(home.name, a.address, a.prefixlen))

    # -- NAT -----------------------------------------------------------------------------

    def nat(self) -> None:
        desired = self.desired
        # A held-back network's entries stay as they are: neither added nor removed.
        held_cidrs = {
            str(ipaddress.IPv4Network(n.cidr)) for n in desired.networks if n.bridge in self.held
        }
        held_nets = [ipaddress.IPv4Network(c) for c in held_cidrs]

        def held_address(address: str) -> bool:
            return any(ipaddress.IPv4Address(address) in net for net in held_nets)

        snat = {str(ipaddress.IPv4Network(c)) for c in desired.snat_ranges} - held_cidrs
        isolated = set(desired.isolated_bridges) - self.held
        floating = {(p.floating, p.fixed) for p in desired.floating if not held_address(p.fixed)}
        needed = bool(snat or floating or isolated)
        state = self.observed.nft
        if self.observed.nft_unreadable:
            return
        if state is None:
            if needed:
                self.problems.append(
                    "nft: program not found; install nftables (NAT and isolation need it)"
                )
            return
        if not state.exists and not needed:
            return
        ops: list[Operation] = []
        if not state.exists or not state.layout_ok:
            ops.append(CreateNatTable(replace=state.exists))
            state = nft.NftState(exists=True, layout_ok=True)
        wanted_sets = {
            "public_ifs": set(desired.public_interfaces),
            "isolated": isolated,
            nft.PAIR_SET: {f"{b} . {b}" for b in isolated},
            nft.NET_SET: snat,
        }
        kept = {
            "isolated": set(self.held),
            nft.PAIR_SET: {f"{b} . {b}" for b in self.held},
            nft.NET_SET: held_cidrs,
        }
        for name, wanted in wanted_sets.items():
            have = set(state.sets.get(name, frozenset()))
            wanted = wanted | (have & kept.get(name, set()))
            ops += [DeleteSetElement(name, v) for v in sorted(have - wanted)]
            ops += [AddSetElement(name, v) for v in sorted(wanted - have)]
        have_pairs = set(state.dnat.items()) | {(f, x) for x, f in state.snat.items()}
        wanted_pairs = floating | {(f, x) for f, x in have_pairs if held_address(x)}
        ops += [
            DeleteNatElement(f, x, state.dnat.get(f) == x, state.snat.get(x) == f)
            for f, x in sorted(have_pairs - wanted_pairs)
        ]
        ops += [AddNatElement(f, x) for f, x in sorted(wanted_pairs - have_pairs)]
        self.after += ops

    # -- DHCP ----------------------------------------------------------------------------

    def dhcp(self, context: PlanContext) -> None:
        networks = [n for n in self.desired.networks if n.dhcp is not None]
        if networks and context.dnsmasq_path is None:
            self.problems.append(
                f"{context.dnsmasq_binary}: program not found; install dnsmasq "
                "(FlatDHCP and VLAN networks need it) or set dnsmasq_binary"
            )
            return
        wanted = set()
        for net in networks:
            assert context.dnsmasq_path is not None
            wanted.add(net.bridge)
            if net.bridge in self.held:
                continue
            files = dnsmasq.DhcpFiles(context.dhcp_dir, net.bridge)
            state = self.observed.dnsmasq.get(net.bridge)
            hosts = dnsmasq.hosts_text(net)
            opts = dnsmasq.opts_text(net)
            names = dnsmasq.names_text(net)
            argv = dnsmasq.argv(context.dnsmasq_path, net, files)
            if net.keys is not None:
                hosts, names = _keyed_files(net.keys.addresses, hosts, names, state, argv)
            changed = (
                state is None
                or state.hosts_text != hosts
                or state.opts_text != opts
                or state.names_text != names
            )
            if changed:
                self.after.append(WriteHostsFile(net.bridge, hosts, opts, names))
            if state is not None and state.strays:
                self.stops.append(StopStrayDnsmasq(net.bridge, state.strays))
            lease_time = net.dhcp.lease_time if net.dhcp is not None else 0
            leased = dnsmasq.leases(net)
            if state is None or state.pid is None:
                self.after.append(
                    StartDnsmasq(net.bridge, net.id, argv, lease_time=lease_time, leases=leased)
                )
            elif state.argv != argv:
                self.after.append(
                    StartDnsmasq(
                        net.bridge,
                        net.id,
                        argv,
                        replaces=state.pid,
                        lease_time=lease_time,
                        leases=leased,
                    )
                )
            elif changed or state.adopted:
                if state.adopted:
                    self.after.append(AdoptDnsmasq(net.bridge, state.pid))
                if changed:
                    self.after.append(ReloadDnsmasq(net.bridge, state.pid))
                # Only a running dnsmasq holds leases to give back, and only a change of
                # its hosts file (an instance gone) makes new ones to ask for: a second
                # apply finds nothing to do here.
                held = net.dhcp.held_leases if net.dhcp is not None else ()
                if changed and held and context.dhcp_release_path is not None:
                    self.after.append(
                        ReleaseLeases(
                            net.bridge,
                            tuple((lease.address, lease.mac) for lease in held),
                            context.dhcp_release_path,
                        )
                    )
            if state is not None and state.pid is not None and state.argv == argv:
                # A dnsmasq started or restarted here holds no DHCPv6 lease (the lease
                # init gives it the IPv4 ones only); a running one may hold some whose
                # address has changed hands, which would keep it from its new owner.
                stale = dnsmasq6.stale_leases(net, state.leases6)
                if stale and context.dhcp_release6_path is not None:
                    self.after.append(
                        ReleaseLeases6(net.bridge, stale, context.dhcp_release6_path)
                    )
        reach = self.desired.reach
        for bridge, state in sorted(self.observed.dnsmasq.items()):
            if bridge in wanted or (reach is not None and bridge not in reach.bridges):
                continue
            # A scoped look names every bridge it covers: one with neither a dnsmasq nor
            # its files (a compute host's) has nothing to stop.
            if state.pid is None and not state.strays and not _has_files(state):
                continue
            self.stops.append(StopDnsmasq(bridge, state.pid, state.strays))


def _keyed_files(
    addresses: frozenset[str],
    hosts: str,
    names: str,
    state: dnsmasq.DnsmasqState | None,
    argv: tuple[str, ...],
) -> tuple[str, str]:
    """The hosts and names files of a network read at some addresses: the running
    dnsmasq's files with those addresses' lines as wanted. A dnsmasq to start (or
    adopt), or files that are not as an apply wrote them, need the whole network."""
    if (
        state is None
        or state.pid is None
        or state.adopted
        or state.strays
        or state.argv != argv
        or state.hosts_text is None
        or state.names_text is None
    ):
        raise WholeHostNeeded
    try:
        return (
            dnsmasq.keyed_text(state.hosts_text, addresses, hosts, names=False),
            dnsmasq.keyed_text(state.names_text, addresses, names, names=True),
        )
    except ValueError:
        raise WholeHostNeeded from None


def _has_files(state: dnsmasq.DnsmasqState) -> bool:
    return any(
        text is not None for text in (state.hosts_text, state.opts_text, state.names_text)
    )


def _hairpins_behind_the_filter(
    after: list[Operation], observed: ObservedHost, opened: closedports.OpenPorts
) -> list[Operation]:
    """An uplink goes into hairpin mode only where the bridge table has, or this plan
    gives it, the element that lets back out of it only what this host NATed: without
    it (no nft, the table unreadable) hairpin mode would reflect every flooded frame."""
    filtered: set[str] = set()
    if isinstance(observed.security, filter_record.VouchedState):
        # The last apply of this same plan gave every routed uplink its element.
        filtered = set(opened.uplinks)
    elif observed.security is not None and observed.security.readable:
        have = observed.security.bridge.sets.get("hairpin_uplinks", frozenset())
        filtered = {element.split(" . ")[0] for element in have}
    filtered |= {op.port for op in after if isinstance(op, closedports.HairpinUplink)}
    return [
        op
        for op in after
        if not (isinstance(op, SetUplinkHairpin) and op.on and op.name not in filtered)
    ]


def plan(desired: DesiredHost, observed: ObservedHost, context: PlanContext) -> Plan:
    builder = _Builder(desired, observed, context.leased, context.vlan_supported)
    held: set[str] = set()
    for net in desired.networks:
        lists = builder.lists()
        marks = [len(ops) for ops in lists]
        before = len(builder.problems)
        builder.network(net)
        if len(builder.problems) > before:
            # Held back: none of its operations, but nothing of it removed either (its
            # links stay wanted), and its dnsmasq is left as it is.
            for ops, mark in zip(lists, marks, strict=True):
                del ops[mark:]
            builder.keep(net)
            held.add(net.bridge)
    local = len(builder.problems)
    builder.held = held
    builder.floating()
    builder.cleanup_links()
    serving = [n for n in desired.networks if n.gateway is not None and n.bridge not in held]
    if serving and not observed.forwarding:
        builder.adds.append(EnableForwarding())
    if any(n.ipv6 is not None for n in serving) and not observed.forwarding_v6:
        builder.adds.append(EnableForwardingV6())
    loopback = observed.links.get("lo")
    if desired.networks and loopback is not None and not loopback.up:
        # A namespace made by `ip netns add` starts with lo down: the metadata server's
        # readiness probe, and the host's own connections to it, go through lo.
        builder.configures.append(SetUp("lo"))
    builder.nat()
    # The filter and the open sets are planned for the whole host at once: without the
    # held networks, and leaving what they have as it is.
    filtered, held_back = heldback.split(desired, frozenset(held))
    opened = closedports.wanted(filtered, observed, context.trusted_ports, leased=context.leased)
    record = _filter_record(filtered, observed, opened)
    if isinstance(observed.security, filter_record.VouchedState) and (
        record is None or record.digest != observed.security.digest
    ):
        # Not the plan the record vouches for: the tables are listed, as without one.
        observed = replace(observed, security=observed.security.listing())
    security = filter_plan.plan(
        filtered.security, observed.security, builder.problems, bridges_here=opened.bridges_here
    )
    if filtered.security is not None:
        security += closedports.plan(opened, observed.security, security)
    if held_back is not None:
        security = [op for op in security if not held_back.touches(op)]
    builder.after += security
    builder.after = _hairpins_behind_the_filter(builder.after, observed, opened)
    builder.dhcp(context)
    return Plan(
        operations=builder.operations(),
        problems=tuple(dict.fromkeys(builder.problems)),
        partial=bool(held) and len(builder.problems) == local,
        held=frozenset(held),
        warnings=tuple(builder.warnings)
        + tuple(closedports.closed_port_warnings(filtered, observed, opened)),
        filter_record=record,
    )


def _filter_record(
    desired: DesiredHost, observed: ObservedHost, opened: closedports.OpenPorts
) -> filter_record.Record | None:
    """What a successful apply of this plan lets the host record: a full plan's, from
    what the filter's plan and the open sets' are made of."""
    if (
        desired.reach is not None
        or desired.security is None
        or desired.security.keyed
        or observed.generation is None
        or observed.security is None
        or not observed.security.readable
    ):
        return None
    return filter_record.Record(
        observed.generation, filter_record.digest(desired.security, opened)
    )
