"""One apply as it is carried out: what every operation's ``execute`` is handed.

An operation either acts at once (a sysctl, a server started) or adds to the batch of
its phase (operations.Phase): netlink requests go out pipelined, one round per phase,
and nftables changes as one atomic batch; the executor sends each batch at the end of
its phase. What a later phase needs of an operation (an address added is announced
once the filter lets it out, a NAT pair deleted has its tracked connections
forgotten) is gathered here for that phase too. This module knows no operation class:
operations know it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import HostError
from core.linux import dnsmasq, netlink, nft
from core.linux.lease import Lease
from core.linux.netlink import OWNER_ALIAS, Netlink, Request

if TYPE_CHECKING:
    from core.linux.metadata.server import Starting
    from core.linux.nfttable import TableChange


class Carried(Protocol):
    """What a batch needs of the operation a request carries out."""

    def describe(self) -> str: ...

    def undo(self, index: dict[str, int]) -> list[Request]: ...

    def explain(self, code: int) -> str: ...


@dataclass
class Batch:
    """Netlink requests of one round, each with the operation it carries out."""

    sent: list[Carried] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def add(self, op: Carried, request: Request) -> None:
        self.sent.append(op)
        self.requests.append(request)

    def check(self, results: list[int], ignore: tuple[int, ...] = ()) -> None:
        for op, code in zip(self.sent, results, strict=True):
            if code and code not in ignore:
                raise HostError(op.explain(code))


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
    # The links this apply creates, by name, in the order of their requests.
    creations: Batch = field(default_factory=Batch)
    created: list[str] = field(default_factory=list)
    created_names: set[str] = field(default_factory=set)
    # Bridges of dual-stack networks that stop taking anything from router adverts.
    ignoring_adverts: list[str] = field(default_factory=list)
    configure: Batch = field(default_factory=Batch)
    # The bridges of links this apply created, set as they are marked netcon's.
    masters: dict[str, str] = field(default_factory=dict)
    # Removals of what was given the lease's lifetime, if the lease lapses meanwhile.
    leased: list[Request] = field(default_factory=list)
    nat_commands: list[dict[str, Any]] = field(default_factory=list)
    # The filter's operations: their commands are merged into one batch (secgroups/render.py).
    filters: list[object] = field(default_factory=list)
    leased_ports: list[str] = field(default_factory=list)
    renewed_ports: list[str] = field(default_factory=list)
    uplinks: Batch = field(default_factory=Batch)
    forgotten: list[str] = field(default_factory=list)
    announced: dict[str, list[str]] = field(default_factory=dict)
    dnsmasq_starts: list[dnsmasq.Start] = field(default_factory=list)
    # Running dnsmasq processes a start replaces (stopped just before the starts).
    replaced: list[int] = field(default_factory=list)
    # Bridges whose dnsmasq starts and is not running now: nothing reads their files.
    idle_dnsmasq: set[str] = field(default_factory=set)
    # dnsmasq's files, (bridge, path, text), written at the DHCP phase's end: only then
    # is it known which bridges' dnsmasq is idle.
    dhcp_writes: list[tuple[str, Path, str]] = field(default_factory=list)
    # The multi-host segment filter's changes: one nft batch (segment6).
    ipv6_side: list[TableChange] = field(default_factory=list)
    # The host input filter's changes: one nft batch (hostinput).
    host_input: list[TableChange] = field(default_factory=list)
    # Both families' metadata DNAT tables (one nft batch) and the IPv6 metadata address
    # (metadata.table).
    metadata_table: list[object] = field(default_factory=list)
    # Metadata servers launched and not yet known to listen (metadata.server).
    launched: list[Starting] = field(default_factory=list)

    _index: dict[str, int] | None = None
    _address_lifetime: int | None = None
    _port_lifetime: int | None = None
    _dhcp_ready: bool = False
    _script_written: bool = False

    def index(self) -> dict[str, int]:
        """Link indexes by name, looked up once per phase that needs them."""
        if self._index is None:
            self._index = self.netlink.indexes(self.names)
        return self._index

    def forget_index(self) -> None:
        """Links came or went: the next look-up is a fresh dump."""
        self._index = None

    def claim(self, name: str, master: str | None = None) -> Request:
        """Mark a link as netcon's (and enslave it to ``master``) in one request."""
        index = self.index()
        return netlink.set_link(
            index[name], alias=OWNER_ALIAS, master=index[master] if master else None
        )

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

    def dhcp_files(self, bridge: str) -> dnsmasq.DhcpFiles:
        """A bridge's dnsmasq files, once the directory is known to be reachable by the
        unprivileged dnsmasq (checked at the first file written)."""
        if not self._dhcp_ready:
            dnsmasq.check_reachable(self.dhcp_dir)
            self._dhcp_ready = True
        return dnsmasq.DhcpFiles(self.dhcp_dir, bridge)

    def lease_script(self) -> None:
        """The script every dnsmasq reports its leases through, written once."""
        if not self._script_written:
            files = self.dhcp_files("any")
            dnsmasq.write_atomically(files.script, dnsmasq.script_text(), mode=0o755)
            self._script_written = True

    def dhcp_file(self, bridge: str, path: Path, text: str) -> None:
        """A dnsmasq file to write at the DHCP phase's end (write_dhcp_files)."""
        self.dhcp_writes.append((bridge, path, text))

    def write_dhcp_files(self) -> None:
        """A dnsmasq that is not running has no reader to shield from half a file, so
        its files are written in place; one being replaced keeps its lease file open, and
        a running one reads its files at any time, so theirs are replaced atomically."""
        for bridge, path, text in self.dhcp_writes:
            if bridge in self.idle_dnsmasq:
                dnsmasq.write_directly(path, text)
            else:
                dnsmasq.write_atomically(path, text)
        self.dhcp_writes.clear()
