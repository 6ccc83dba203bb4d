"""apply(plan): carry out a plan's operations, or undo what it started and say why.

Netlink work is sent in three pipelined rounds (removals, link creation, then
enslaving/marking/addresses, which need the new links' indexes); nftables changes
go as one atomic batch. If any of that fails, what this apply made in the kernel (the
links it created and the addresses it added, by index: never another's) is taken
back, so nothing is left half made.

Daemons come last, once the addresses they bind to exist: every dnsmasq is started
at once and then all are waited for. A daemon that fails does not take back the
kernel work, which is right as it is: the apply reports every daemon that failed, by
name, and the next apply starts them again.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import HeldBack, HostError
from core.linux import (
    closedports,
    conntrack,
    dnsmasq,
    dnsmasq6,
    garp,
    metadata,
    metadata6,
    namespace,
    netlink,
    nft,
    secgroups,
    segment6,
)
from core.linux.lease import Lease, LeaseLapsed
from core.linux.namespace import entered
from core.linux.netlink import Netlink, Request
from core.linux.observed import OWNER_ALIAS
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
    RenewLease,
    SetAddressLifetime,
    SetHairpin,
    SetMaster,
    SetMtu,
    SetUp,
    SetUplinkHairpin,
    StartDnsmasq,
    StartVpn,
    StopDnsmasq,
    StopStrayDnsmasq,
    StopVpn,
    WriteHostsFile,
)
from core.linux.sysctl import (
    enable_forwarding,
    enable_forwarding_v6,
    enable_ipv6,
    ignore_adverts,
)

log = logging.getLogger("netcon.host")

CREATES = (CreateBridge, CreateVxlan, CreateVlan)
NAT_OPS = (CreateNatTable, AddSetElement, DeleteSetElement, AddNatElement, DeleteNatElement)
FILTER_OPS = (secgroups.FilterOperation, secgroups.EnableBridgeNetfilter)


@dataclass
class Executor:
    netlink: Netlink
    nft: nft.Nft
    netns: str | None
    dhcp_dir: Path
    journal: Path
    nat_marker: Path
    dnsmasq_env: dict[str, str]
    # Where the VPN servers' files are (their per-namespace part is netns's).
    state_dir: str
    # Until when this host may serve: what leased addresses' lifetimes end with.
    lease: Lease | None = None

    def apply(self, plan: Plan) -> None:
        if plan.problems and not plan.partial:
            raise HostError(plan.problems[0])
        self._carry_out(plan.operations)
        if plan.problems:
            raise HeldBack(
                f"{plan.problems[0]} (that network held back; everything else applied)"
                if len(plan.problems) == 1
                else f"{'; '.join(plan.problems)} (those networks held back; "
                "everything else applied)",
                plan.problems,
                len(plan.operations),
            )

    def _carry_out(self, ops: tuple[Operation, ...]) -> None:
        if not ops:
            return
        undo: list[Request] = []
        # The filter's operations (thousands on a first apply) go to one nft batch; the
        # passes over links, addresses and daemons need not look at them.
        everything, ops = ops, tuple(op for op in ops if not isinstance(op, FILTER_OPS))
        self._names = _link_names(ops)
        if _needs_lease(everything):
            # Before anything changes: a host whose lease lapsed (its process was paused
            # mid-apply, say) must not bring up what another host may serve by now.
            self._lifetime()
        try:
            # A VPN server sits on its project's bridge: it stops before links go and
            # starts once bridges exist and are up.
            self._stop_vpns(ops)
            metadata.stop(ops)
            self._stop_dnsmasq(ops)
            self._removals(ops)
            self._index = None
            created = [op for op in ops if isinstance(op, CREATES)]
            if created:
                self.journal.parent.mkdir(parents=True, exist_ok=True)
                self.journal.write_text("".join(f"{op.name}\n" for op in created))
            self._create(created, undo)
            for op in ops:
                if isinstance(op, EnableIpv6):
                    enable_ipv6(self.netns, op.name)
            ignore_adverts(self.netns, [op.name for op in ops if isinstance(op, IgnoreAdverts)])
            self._configure(ops, created, undo)
            if any(isinstance(op, EnableForwarding) for op in ops):
                enable_forwarding(self.netns)
            if any(isinstance(op, EnableForwardingV6) for op in ops):
                enable_forwarding_v6(self.netns)
            secgroups.prepare(everything, self.netns, self.nat_marker.parent)
            nat = [op for op in ops if isinstance(op, NAT_OPS)]
            self._nat(nat, self._filter_commands(everything))
            self._uplink_hairpins([op for op in ops if isinstance(op, SetUplinkHairpin) and op.on])
            self._forget_old_mappings(ops)
        except Exception:
            if undo:
                # Best effort: what this apply made goes again, so nothing is half made.
                self.netlink.run(list(reversed(undo)))
            raise
        finally:
            self.journal.unlink(missing_ok=True)
        # Before dnsmasq starts: each running dnsmasq reads every interface's addresses
        # again for each address added, and its first advert already has the filter.
        self._ipv6_side(ops)
        metadata.apply_table(ops, self.nft.binary, self.netns)
        # The metadata server starts while the rest is done, and is waited for last.
        starting = metadata.launch(ops)
        try:
            self._announce(ops)
            failures = self._dhcp(ops)
        except BaseException:
            for started in starting:
                started.abandon()
            raise
        failures += metadata.wait_all(starting, self.netns)
        failures += self._start_vpns(ops)
        self.netlink.catch_up()
        if failures:
            raise HostError("; ".join(failures))

    def _ipv6_side(self, ops: Sequence[Operation]) -> None:
        """The metadata address on the bridges, then the IPv6 metadata DNAT and the
        multi-host segment filter in one nft batch."""
        metadata6.apply_addresses(ops, self.netlink)
        text = metadata6.table_text(ops) + segment6.table_text(ops)
        if not text:
            return
        result = namespace.run(self.netns, [self.nft.binary, "-f", "-"], stdin=text)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            raise HostError(f"nft: IPv6 metadata or segment filter: {lines[0] if lines else ''}")
        # The host's state directory holds the NAT marker, and these tables' markers.
        metadata6.record(ops, self.nat_marker.parent)
        segment6.record(ops, self.nat_marker.parent)

    def _filter_commands(self, ops: Sequence[Operation]) -> list[dict[str, Any]]:
        """The filter's batch, with the lease's lifetime on the elements that carry it
        (VPN taps), counted now; and taken back if the lease lapsed meanwhile."""
        ports = [op.port for op in ops if isinstance(op, closedports.LeasePort)]
        ports += [port for op in ops if isinstance(op, RenewLease) for port in op.ports]
        if not ports:
            return secgroups.commands(ops)
        lifetime = self._lifetime()
        given = [
            replace(op, lifetime=lifetime) if isinstance(op, closedports.LeasePort) else op
            for op in ops
        ]
        renewed = tuple(port for op in ops if isinstance(op, RenewLease) for port in op.ports)
        self._leased_ports = tuple(ports)
        return secgroups.commands(given) + closedports.renewal(renewed, lifetime)

    _leased_ports: tuple[str, ...] = ()

    def _lifetime(self) -> int:
        """Seconds left of the lease, for an address that lasts as long as it."""
        if self.lease is None:
            raise HostError(
                "addresses on this host last as long as its heartbeat lease (fencing), and "
                "this apply renewed none: apply with `netcon host apply` or `netcon agent`"
            )
        return self.lease.lifetime()

    # -- netlink ---------------------------------------------------------------------------

    def _indexes(self) -> dict[str, int]:
        if self._index is None:
            # Only the links the plan names: a plan for one network looks up its own.
            self._index = self.netlink.indexes(self._names)
        return self._index

    _index: dict[str, int] | None = None
    _names: set[str] | None = None

    def _check(
        self, ops: Sequence[Operation], results: list[int], ignore: tuple[int, ...] = ()
    ) -> None:
        for op, code in zip(ops, results, strict=True):
            if code and code not in ignore:
                raise HostError(_explain(op, code))

    def _removals(self, ops: Sequence[Operation]) -> None:
        removals = [op for op in ops if isinstance(op, DeleteAddress | DeleteLink)]
        if not removals:
            return
        index = self._indexes()
        requests: list[Request] = []
        sent: list[Operation] = []
        for op in removals:
            if isinstance(op, DeleteAddress):
                if op.ifname in index:
                    requests.append(netlink.del_addr(index[op.ifname], op.address, op.prefixlen))
                    sent.append(op)
            else:
                if op.name in index:
                    requests.append(netlink.del_link(index[op.name]))
                    sent.append(op)
        gone = (errno.ENODEV, errno.EADDRNOTAVAIL, errno.ESRCH)
        self._check(sent, self.netlink.run(requests), gone)

    def _create(self, created: Sequence[Operation], undo: list[Request]) -> None:
        if not created:
            return
        index = self._indexes() if any(not isinstance(op, CreateBridge) for op in created) else {}
        requests = []
        for op in created:
            if isinstance(op, CreateBridge):
                requests.append(
                    netlink.new_link(op.name, "bridge", address=netlink.bridge_address())
                )
            elif isinstance(op, CreateVxlan):
                data = netlink.vxlan_data(op.vni, op.group, index[op.parent], op.port)
                requests.append(netlink.new_link(op.name, "vxlan", data=data))
            elif isinstance(op, CreateVlan):
                requests.append(
                    netlink.new_link(
                        op.name, "vlan", link=index[op.parent], data=netlink.vlan_data(op.vlan_id)
                    )
                )
        results = self.netlink.run(requests)
        made = [op for op, code in zip(created, results, strict=True) if code == 0]
        if made:
            self._index = None  # the new links' indexes come from a fresh dump
            index = self._indexes()
            undo.extend(netlink.del_link(index[op.name]) for op in made if op.name in index)  # type: ignore[attr-defined]
        self._check(created, results)

    def _configure(
        self, ops: Sequence[Operation], created: Sequence[Operation], undo: list[Request]
    ) -> None:
        configures = [
            op
            for op in ops
            if isinstance(
                op,
                SetMaster
                | SetUp
                | AddAddress
                | ClaimLink
                | SetMtu
                | SetAddressLifetime
                | RenewLease
                | SetHairpin,
            )
            or (isinstance(op, SetUplinkHairpin) and not op.on)
        ]
        if not configures and not created:
            return
        index = self._indexes()
        requests: list[Request] = []
        sent: list[Operation] = []
        # Counted as late as possible: the lifetime ends with the lease, not after it.
        lifetime = self._lifetime() if _needs_lease(configures) else None
        leased: list[Request] = []
        masters = {op.port: op.bridge for op in configures if isinstance(op, SetMaster)}
        for op in created:
            name: str = op.name  # type: ignore[attr-defined]
            master = masters.pop(name, None)
            requests.append(
                netlink.set_link(
                    index[name],
                    alias=OWNER_ALIAS,
                    master=index[master] if master else None,
                )
            )
            sent.append(op)
        for op in configures:
            if isinstance(op, SetMaster):
                if op.port in masters:
                    requests.append(netlink.set_link(index[op.port], master=index[op.bridge]))
                    sent.append(op)
            elif isinstance(op, SetUp):
                requests.append(netlink.set_link(index[op.name], up=True))
                sent.append(op)
            elif isinstance(op, ClaimLink):
                requests.append(netlink.set_link(index[op.name], alias=OWNER_ALIAS))
                sent.append(op)
            elif isinstance(op, SetMtu):
                requests.append(netlink.set_link(index[op.name], mtu=op.mtu))
                sent.append(op)
            elif isinstance(op, SetHairpin):
                requests.append(netlink.set_port(index[op.name], hairpin=True))
                sent.append(op)
            elif isinstance(op, SetUplinkHairpin):
                # Cleared before the nft batch drops its element (see SetUplinkHairpin).
                requests.append(netlink.set_port(index[op.name], hairpin=False))
                sent.append(op)
            elif isinstance(op, AddAddress):
                requests.append(
                    netlink.new_addr(
                        index[op.ifname],
                        op.address,
                        op.prefixlen,
                        broadcast=op.broadcast,
                        label=op.label,
                        lifetime=lifetime if op.leased else None,
                    )
                )
                sent.append(op)
                if op.leased:
                    leased.append(netlink.del_addr(index[op.ifname], op.address, op.prefixlen))
            elif isinstance(op, SetAddressLifetime):
                if op.ifname in index:
                    requests.append(
                        netlink.set_addr_lifetime(
                            index[op.ifname],
                            op.address,
                            op.prefixlen,
                            lifetime if op.leased else None,
                        )
                    )
                    sent.append(op)
                    if op.leased:
                        leased.append(netlink.del_addr(index[op.ifname], op.address, op.prefixlen))
            elif isinstance(op, RenewLease):
                for ifname, address, prefixlen in op.addresses:
                    if ifname in index:
                        requests.append(
                            netlink.set_addr_lifetime(index[ifname], address, prefixlen, lifetime)
                        )
                        sent.append(op)
                        leased.append(netlink.del_addr(index[ifname], address, prefixlen))
        results = self.netlink.run(requests)
        for op, code in zip(sent, results, strict=True):
            if code == 0 and isinstance(op, AddAddress):
                undo.append(netlink.del_addr(index[op.ifname], op.address, op.prefixlen))
        if leased and self.lease is not None and self.lease.lapsed():
            # Stopped between counting the lifetime and sending it: what was given would
            # outlive the lease, so it goes now (it was gone or going anyway).
            self.netlink.run(leased)
            raise LeaseLapsed(-self.lease.remaining())
        self._check(sent, results)

    # -- nftables -------------------------------------------------------------------------

    def _nat(self, ops: Sequence[Operation], filters: list[dict[str, Any]]) -> None:
        """NAT and security-group changes, as one atomic nft batch."""
        commands: list[dict[str, Any]] = []
        for op in ops:
            if isinstance(op, CreateNatTable):
                commands += nft.table_commands(op.replace)
            elif isinstance(op, AddSetElement | DeleteSetElement):
                verb = "add" if isinstance(op, AddSetElement) else "delete"
                value = nft.set_element(op.set_name, op.value)
                commands.append(nft.element_command(verb, op.set_name, [value]))
            elif isinstance(op, AddNatElement):
                commands.append(nft.element_command("add", nft.DNAT_MAP, [[op.floating, op.fixed]]))
                commands.append(nft.element_command("add", nft.SNAT_MAP, [[op.fixed, op.floating]]))
            elif isinstance(op, DeleteNatElement):
                commands += self._delete_pair(op)
        if any(isinstance(op, CreateNatTable) for op in ops):
            self.nat_marker.parent.mkdir(parents=True, exist_ok=True)
            self.nat_marker.touch()
        self.nft.run(commands + filters)
        ports, self._leased_ports = self._leased_ports, ()
        if ports and self.lease is not None and self.lease.lapsed():
            # Paused between counting the timeout and sending it: the elements would
            # outlive the lease, so they go now.
            self.nft.run(closedports.removal(ports))
            raise LeaseLapsed(-self.lease.remaining())

    def _uplink_hairpins(self, ops: Sequence[SetUplinkHairpin]) -> None:
        """Uplinks into hairpin mode once the nft batch that lets only NATed frames back
        out of them is in the kernel (see SetUplinkHairpin)."""
        if not ops:
            return
        index = self._indexes()
        self._check(
            ops, self.netlink.run([netlink.set_port(index[op.name], hairpin=True) for op in ops])
        )

    def _delete_pair(self, op: DeleteNatElement) -> list[dict[str, Any]]:
        commands = []
        if op.in_dnat:
            commands.append(nft.element_command("delete", nft.DNAT_MAP, [op.floating]))
        if op.in_snat:
            commands.append(nft.element_command("delete", nft.SNAT_MAP, [op.fixed]))
        return commands

    def _forget_old_mappings(self, ops: Sequence[Operation]) -> None:
        """A NAT mapping holds for a connection's life: once a floating IP's pair is gone
        (disassociated, or moved to another instance), its tracked connections go too,
        or they keep flowing to the old instance."""
        moved = [op.floating for op in ops if isinstance(op, DeleteNatElement)]
        if not moved:
            return
        try:
            with entered(self.netns):
                conntrack.forget(moved)
        except OSError as exc:
            log.warning("connections through %s not forgotten: %s", ", ".join(moved), exc)

    def _announce(self, ops: Sequence[Operation]) -> None:
        """Gratuitous ARP for every address this apply brought here (a floating IP, a
        gateway after a failover), so neighbours stop sending to its old home now rather
        than when their ARP entry expires. Best effort: the address works without it."""
        added: dict[str, list[str]] = {}
        for op in ops:
            # ARP is IPv4's; an IPv6 neighbour learns from the router adverts.
            if isinstance(op, AddAddress) and ":" not in op.address:
                added.setdefault(op.ifname, []).append(op.address)
        if not added:
            return
        with entered(self.netns):
            for ifname, addresses in added.items():
                try:
                    garp.announce(ifname, addresses)
                except OSError as exc:
                    log.warning("no gratuitous ARP for %s on %s: %s", addresses, ifname, exc)

    # -- project VPNs ----------------------------------------------------------------------

    def _stop_vpns(self, ops: Sequence[Operation]) -> None:
        stops = [op for op in ops if isinstance(op, StopVpn)]
        if stops:
            from core.linux.vpn import server

            for op in stops:
                server.stop(server.ServerFiles(self.state_dir, op.project, self.netns))

    def _start_vpns(self, ops: Sequence[Operation]) -> list[str]:
        """Start each wanted server; why those that failed did (the others still run)."""
        starts = [op for op in ops if isinstance(op, StartVpn)]
        if not starts:
            return []
        from core.linux.vpn import server

        failures = []
        for op in starts:
            try:
                files = server.ServerFiles(self.state_dir, op.spec.project, self.netns)
                server.start(files, op.spec)
            except HostError as exc:
                failures.append(str(exc))
        return failures

    # -- DHCP ------------------------------------------------------------------------------

    def _stop_dnsmasq(self, ops: Sequence[Operation]) -> None:
        pids: list[int] = []
        gone: list[StopDnsmasq] = []
        for op in ops:
            if isinstance(op, StopDnsmasq):
                pids += ([op.pid] if op.pid is not None else []) + list(op.strays)
                gone.append(op)
            elif isinstance(op, StopStrayDnsmasq):
                pids += op.pids
        dnsmasq.stop_processes(pids)
        for op in gone:
            dnsmasq.delete_files(dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge))

    def _dhcp(self, ops: Sequence[Operation]) -> list[str]:
        """Files, restarts, starts and reloads; why the daemons that failed did."""
        starts = [op for op in ops if isinstance(op, StartDnsmasq)]
        if starts or any(isinstance(op, WriteHostsFile) for op in ops):
            dnsmasq.check_reachable(self.dhcp_dir)
        if starts:
            files = dnsmasq.DhcpFiles(self.dhcp_dir, "any")
            dnsmasq.write_atomically(files.script, dnsmasq.script_text(), mode=0o755)
        now = time.time()
        # A dnsmasq that is not running has no reader to shield from half a file; one
        # being replaced keeps its lease file open, so it gets new ones.
        idle = {op.bridge for op in starts if op.replaces is None}
        for start in starts:
            write = dnsmasq.write_directly if start.bridge in idle else dnsmasq.write_atomically
            files = dnsmasq.DhcpFiles(self.dhcp_dir, start.bridge)
            write(files.leases, dnsmasq.leases_text(start.leases, start.lease_time, now))
            write(files.leased, "".join(f"{mac} {address}\n" for mac, address, _ in start.leases))
            # A new dnsmasq starts with no DHCPv6 lease.
            files.leases6.unlink(missing_ok=True)
        for op in ops:
            if isinstance(op, WriteHostsFile):
                write = dnsmasq.write_directly if op.bridge in idle else dnsmasq.write_atomically
                files = dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge)
                write(files.opts, op.opts)
                if op.names is not None:
                    write(files.names, op.names)
                write(files.hosts, op.hosts)
        dnsmasq.stop_processes([op.replaces for op in starts if op.replaces is not None])
        failed = dnsmasq.start_all(
            self.netns,
            [
                dnsmasq.Start(
                    dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge),
                    op.argv,
                    dict(
                        self.dnsmasq_env,
                        NETWORK_ID=str(op.network_id),
                        DHCP_LEASE_TIME=str(op.lease_time),
                        NETCON_LEASES=str(dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge).leases),
                    ),
                )
                for op in starts
            ],
        )
        for op in ops:
            if isinstance(op, AdoptDnsmasq):
                dnsmasq.adopt(dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge), op.pid)
            elif isinstance(op, ReloadDnsmasq):
                dnsmasq.reload(op.pid)
            elif isinstance(op, ReleaseLeases):
                dnsmasq.release_leases(self.netns, op.program, op.bridge, op.leases)
            elif isinstance(op, ReleaseLeases6):
                failures = dnsmasq6.release_leases(self.netns, op.program, op.bridge, op.leases)
                # Forgotten even when dnsmasq would not release one (a lease of a server
                # DUID it no longer has): asking again at every apply would not help, and
                # such a lease runs out by itself.
                leases6 = dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge).leases6
                held = leases6.read_text() if leases6.exists() else None
                dnsmasq.write_atomically(leases6, dnsmasq6.without(held, op.leases))
                if failures:
                    raise HostError("; ".join(failures))
        return [dnsmasq.failure_message(failed)] if failed else []


def _needs_lease(ops: Sequence[Operation]) -> bool:
    return any(
        isinstance(op, RenewLease | closedports.LeasePort)
        or (isinstance(op, AddAddress | SetAddressLifetime) and op.leased)
        for op in ops
    )


def _link_names(ops: Sequence[Operation]) -> set[str]:
    names: set[str] = set()
    for op in ops:
        if isinstance(
            op,
            DeleteLink | SetUp | ClaimLink | CreateBridge | SetMtu | SetHairpin | SetUplinkHairpin,
        ):
            names.add(op.name)
        elif isinstance(op, CreateVxlan | CreateVlan):
            names.update((op.name, op.parent))
        elif isinstance(op, SetMaster):
            names.update((op.port, op.bridge))
        elif isinstance(op, AddAddress | DeleteAddress | SetAddressLifetime):
            names.add(op.ifname)
        elif isinstance(op, RenewLease):
            names.update(ifname for ifname, _, _ in op.addresses)
    return names


def _explain(op: Operation, code: int) -> str:
    if isinstance(op, CreateVlan) and code == errno.EOPNOTSUPP:
        return (
            f"network {op.network}: this kernel has no 802.1Q VLAN support ({op.name} on "
            f"{op.parent}: {os.strerror(code)}); create the network with --segmentation vxlan, "
            'or set segmentation = "vxlan" in netcon.toml'
        )
    return f"{op.describe()}: {os.strerror(code)}"
