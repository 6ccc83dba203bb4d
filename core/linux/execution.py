"""One apply as it is carried out: what every operation's ``execute`` is handed.

An operation either acts at once (a sysctl, a server started) or adds to a batch of its
phase (Phase in operations.py): netlink requests go out pipelined, one round per phase,
and nftables changes as one atomic batch. The executor calls ``flush`` at the end of
every phase, which sends what the phase gathered. What a batch needs of an operation
in a later phase (an address added is announced once the filter lets it out, a NAT
pair deleted has its tracked connections forgotten) is gathered for that phase too.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import HostError
from core.linux import closedports, conntrack, dnsmasq, garp, netlink, nft, processes, secgroups
from core.linux.lease import Lease, LeaseLapsed
from core.linux.metadata import table as metadata_table
from core.linux.namespace import entered
from core.linux.netlink import Netlink, Request
from core.linux.observed import OWNER_ALIAS
from core.linux.operations import CreateVlan, Operation, Phase

if TYPE_CHECKING:
    from core.linux.operations import CreateLink, SetUplinkHairpin, StartDnsmasq, WriteHostsFile

log = logging.getLogger("netcon.host")


@dataclass
class Batch:
    """Netlink requests of one round, each with the operation it carries out."""

    sent: list[Operation] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def add(self, op: Operation, request: Request) -> None:
        self.sent.append(op)
        self.requests.append(request)


@dataclass
class Execution:
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
    lease: Lease | None
    # The links the plan names: a plan for one network looks up its own.
    names: set[str]
    # What this apply made in the kernel, taken back if a later kernel phase fails.
    undo: list[Request] = field(default_factory=list)
    # Why the daemons that failed did (the kernel work stays).
    failures: list[str] = field(default_factory=list)

    # -- what the phases gather -----------------------------------------------------------
    stopped_servers: list[int] = field(default_factory=list)
    stopped_dnsmasq: list[int] = field(default_factory=list)
    dhcp_gone: list[str] = field(default_factory=list)
    removals: Batch = field(default_factory=Batch)
    creations: Batch = field(default_factory=Batch)
    created: list[CreateLink] = field(default_factory=list)
    created_names: set[str] = field(default_factory=set)
    configure: Batch = field(default_factory=Batch)
    # The bridges of links this apply created, set as they are marked netcon's.
    masters: dict[str, str] = field(default_factory=dict)
    # Removals of what was given the lease's lifetime, if the lease lapses meanwhile.
    leased: list[Request] = field(default_factory=list)
    nat_commands: list[dict[str, Any]] = field(default_factory=list)
    filters: list[Operation] = field(default_factory=list)
    leased_ports: list[str] = field(default_factory=list)
    renewed_ports: list[str] = field(default_factory=list)
    uplinks: list[SetUplinkHairpin] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    announced: dict[str, list[str]] = field(default_factory=dict)
    hosts_files: list[WriteHostsFile] = field(default_factory=list)
    dnsmasq_starts: list[StartDnsmasq] = field(default_factory=list)
    metadata_table: list[Operation] = field(default_factory=list)

    _index: dict[str, int] | None = None
    _address_lifetime: int | None = None
    _port_lifetime: int | None = None

    def index(self) -> dict[str, int]:
        """Link indexes by name, looked up once per phase that needs them."""
        if self._index is None:
            self._index = self.netlink.indexes(self.names)
        return self._index

    def claim(self, name: str) -> Request:
        """Mark a link as netcon's."""
        return netlink.set_link(self.index()[name], alias=OWNER_ALIAS)

    def lifetime(self) -> int:
        """Seconds left of the lease, for an address that lasts as long as it."""
        if self.lease is None:
            raise HostError(
                "addresses on this host last as long as its heartbeat lease (fencing), and "
                "this apply renewed none: apply with `netcon host apply` or `netcon agent`"
            )
        return self.lease.lifetime()

    def address_lifetime(self) -> int:
        # Counted as late as possible (once, as the links are configured): the lifetime
        # ends with the lease, not after it.
        if self._address_lifetime is None:
            self._address_lifetime = self.lifetime()
        return self._address_lifetime

    def port_lifetime(self) -> int:
        """The lease's lifetime for the filter's elements that carry it (VPN taps)."""
        if self._port_lifetime is None:
            self._port_lifetime = self.lifetime()
        return self._port_lifetime

    # -- the end of each phase --------------------------------------------------------------

    def flush(self, phase: Phase) -> None:
        send = self._flushes().get(phase)
        if send is not None:
            send()

    def _flushes(self) -> dict[Phase, Callable[[], None]]:
        return {
            Phase.STOP_METADATA: self._stop_servers,
            Phase.STOP_DNSMASQ: self._stop_dnsmasq,
            Phase.REMOVE_LINKS: self._remove,
            Phase.CREATE_LINKS: self._create,
            Phase.CONFIGURE_LINKS: self._configure,
            Phase.NFT: self._nft,
            Phase.HAIRPIN_UPLINKS: self._hairpin_uplinks,
            Phase.FORGET_MAPPINGS: self._forget_old_mappings,
            Phase.ANNOUNCE: self._announce,
            Phase.DHCP: self._dhcp,
            Phase.METADATA_TABLE: self._metadata_table,
        }

    def _check(self, batch: Batch, results: list[int], ignore: tuple[int, ...] = ()) -> None:
        for op, code in zip(batch.sent, results, strict=True):
            if code and code not in ignore:
                raise HostError(_explain(op, code))

    def _stop_servers(self) -> None:
        """Metadata servers stop first: a new one needs the port."""
        processes.terminate(self.stopped_servers)

    def _stop_dnsmasq(self) -> None:
        dnsmasq.stop_processes(self.stopped_dnsmasq)
        for bridge in self.dhcp_gone:
            dnsmasq.delete_files(dnsmasq.DhcpFiles(self.dhcp_dir, bridge))

    def _remove(self) -> None:
        if self.removals.requests:
            gone = (errno.ENODEV, errno.EADDRNOTAVAIL, errno.ESRCH)
            self._check(self.removals, self.netlink.run(self.removals.requests), gone)
        self._index = None

    def _create(self) -> None:
        created = self.created
        if not created:
            return
        # Named before they exist: an interrupted apply's links are known as netcon's.
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self.journal.write_text("".join(f"{op.name}\n" for op in created))
        results = self.netlink.run(self.creations.requests)
        made = [op for op, code in zip(created, results, strict=True) if code == 0]
        if made:
            self._index = None  # the new links' indexes come from a fresh dump
            index = self.index()
            self.undo.extend(netlink.del_link(index[op.name]) for op in made if op.name in index)
        self._check(self.creations, results)

    def _configure(self) -> None:
        if not self.configure.requests and not self.created:
            return
        index = self.index()
        # First in the round: the links this apply created, marked as netcon's and
        # enslaved to their bridge in the same request.
        marks = Batch()
        for link in self.created:
            master = self.masters.get(link.name)
            marks.add(
                link,
                netlink.set_link(
                    index[link.name], alias=OWNER_ALIAS, master=index[master] if master else None
                ),
            )
        self.configure = Batch(
            marks.sent + self.configure.sent, marks.requests + self.configure.requests
        )
        results = self.netlink.run(self.configure.requests)
        for op, code in zip(self.configure.sent, results, strict=True):
            if code == 0:
                self.undo += op.undo(index)
        if self.leased and self.lease is not None and self.lease.lapsed():
            # Stopped between counting the lifetime and sending it: what was given would
            # outlive the lease, so it goes now (it was gone or going anyway).
            self.netlink.run(self.leased)
            raise LeaseLapsed(-self.lease.remaining())
        self._check(self.configure, results)

    def _nft(self) -> None:
        """NAT and security-group changes, as one atomic nft batch."""
        filters = secgroups.commands(self.filters)
        if self.renewed_ports:
            filters += closedports.renewal(tuple(self.renewed_ports), self.port_lifetime())
        self.nft.run(self.nat_commands + filters)
        ports = tuple(self.leased_ports)
        if ports and self.lease is not None and self.lease.lapsed():
            # Paused between counting the timeout and sending it: the elements would
            # outlive the lease, so they go now.
            self.nft.run(closedports.removal(ports))
            raise LeaseLapsed(-self.lease.remaining())

    def _hairpin_uplinks(self) -> None:
        """Uplinks into hairpin mode once the nft batch that lets only NATed frames back
        out of them is in the kernel (see SetUplinkHairpin)."""
        if not self.uplinks:
            return
        index = self.index()
        batch = Batch()
        for op in self.uplinks:
            batch.add(op, netlink.set_port(index[op.name], hairpin=True))
        self._check(batch, self.netlink.run(batch.requests))

    def _forget_old_mappings(self) -> None:
        """A NAT mapping holds for a connection's life: once a floating IP's pair is gone
        (disassociated, or moved to another instance), its tracked connections go too,
        or they keep flowing to the old instance."""
        if not self.forgotten:
            return
        try:
            with entered(self.netns):
                conntrack.forget(self.forgotten)
        except OSError as exc:
            log.warning("connections through %s not forgotten: %s", ", ".join(self.forgotten), exc)

    def _announce(self) -> None:
        """Gratuitous ARP for every address this apply brought here (a floating IP, a
        gateway after a failover), so neighbours stop sending to its old home now rather
        than when their ARP entry expires. Best effort: the address works without it."""
        if not self.announced:
            return
        with entered(self.netns):
            for ifname, addresses in self.announced.items():
                try:
                    garp.announce(ifname, addresses)
                except OSError as exc:
                    log.warning("no gratuitous ARP for %s on %s: %s", addresses, ifname, exc)

    def _dhcp(self) -> None:
        """Files, restarts, starts and reloads; why the daemons that failed did."""
        starts = self.dnsmasq_starts
        if starts or self.hosts_files:
            dnsmasq.check_reachable(self.dhcp_dir)
        if starts:
            files = dnsmasq.DhcpFiles(self.dhcp_dir, "any")
            dnsmasq.write_atomically(files.script, dnsmasq.script_text(), mode=0o755)
        now = time.time()
        for start in starts:
            files = dnsmasq.DhcpFiles(self.dhcp_dir, start.bridge)
            text = dnsmasq.leases_text(start.leases, start.lease_time, now)
            dnsmasq.write_atomically(files.leases, text)
            known = "".join(f"{mac} {address}\n" for mac, address, _ in start.leases)
            dnsmasq.write_atomically(files.leased, known)
        for op in self.hosts_files:
            files = dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge)
            dnsmasq.write_atomically(files.opts, op.opts)
            if op.names is not None:
                dnsmasq.write_atomically(files.names, op.names)
            dnsmasq.write_atomically(files.hosts, op.hosts)
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
        if failed:
            self.failures.append(dnsmasq.failure_message(failed))

    def _metadata_table(self) -> None:
        metadata_table.apply(self.metadata_table, self.nft.binary, self.netns)


def needs_lease(ops: Sequence[Operation]) -> bool:
    return any(op.needs_lease() for op in ops)


def _explain(op: Operation, code: int) -> str:
    if isinstance(op, CreateVlan) and code == errno.EOPNOTSUPP:
        return (
            f"network {op.network}: this kernel has no 802.1Q VLAN support ({op.name} on "
            f"{op.parent}: {os.strerror(code)}); create the network with --segmentation vxlan, "
            'or set segmentation = "vxlan" in netcon.toml'
        )
    return f"{op.describe()}: {os.strerror(code)}"
