"""Fail closed on netcon's bridges: which ports pass, element by element.

A frame passes a bridge port of this host only if the port is in one of the open sets of
``table bridge netcon`` (see secgroups/tables.py): an instance port of this host (``ports``,
filtered further by anti-spoofing), netcon's own (``own_ports``: a network's segment
link, its bridge_interface, its VPN tap), a port the admin trusts (``trusted_ports``,
a setting) or a port of a bridge netcon does not own (``foreign_ports``: an admin's Flat
bridge, a container bridge). Anything else (a terminated instance's tap still plugged, a
tap whose MAC no row holds) passes nothing, from the moment it is plugged: the rule is in
the kernel, not in an apply that would have to notice the port.

The kernel cannot tell here which bridge a port is on (no ``meta ibrname``), so the
ports of other bridges are named one by one, as the last full apply found them: one
plugged there since passes nothing until the next full apply (the agent's re-sync) or
until trusted_ports names it.

On a fenced host (core.linux.lease) a VPN tap's element carries the heartbeat lease as
its timeout, renewed with the addresses: a VPN server whose agent is dead bridges its
clients into nothing once the lease ends, as the gateway's address goes then too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.linux.desired import DesiredHost
from core.linux.operations import Operation
from core.linux.ownports import own_ports, owned_bridges, scoped_own, vpn_taps
from core.linux.secgroups import tables as sg
from core.linux.secgroups.operations import (
    ADD_ELEMENTS,
    DROP_ELEMENTS,
    CreateFilterTable,
    DeleteFilterTable,
    FilterOperation,
    Staged,
)
from core.linux.secgroups.record import VouchedState
from core.linux.secgroups.state import FilterState, TableState
from core.linux.secgroups.whole import CreateWholeFilter

if TYPE_CHECKING:
    from core.linux.execution import Execution
    from core.linux.observed import ObservedHost

# Before elements are dropped: the elements a removal makes sure of first.
ENSURE = DROP_ELEMENTS - 1
# What each open set holds, as the plan says it.
WHY = {
    "own_ports": "netcon's own port",
    "trusted_ports": "trusted_ports names it",
    "foreign_ports": "a port of a bridge netcon does not own",
}


@dataclass(frozen=True)
class OpenPorts:
    """What the open sets should hold, as far as this plan knows."""

    own: frozenset[str]
    trusted: frozenset[str]
    # None: not looked at (a scoped plan sees only the links it names).
    foreign: frozenset[str] | None
    # Whether netcon has bridges here (None: not known, in a scoped plan).
    bridges_here: bool | None
    # Whether every port of the host was seen (a full plan).
    complete: bool
    # The own ports a scoped plan may close: those of the networks it covers (None: any).
    closable: frozenset[str] | None = None
    # The own ports that pass only as long as the heartbeat lease (VPN taps, when fenced).
    leased: frozenset[str] = frozenset()
    # The uplinks of bridges this host routes for, which NATed frames may go back out.
    uplinks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OpenPort(FilterOperation):
    set_name: str
    port: str

    def describe(self) -> str:
        return f"let port {self.port} pass on netcon's bridges ({WHY[self.set_name]})"

    def commands(self) -> list[tuple[int, Staged]]:
        return [(ADD_ELEMENTS, ("add", (sg.BRIDGE, self.set_name, self.port)))]


@dataclass(frozen=True)
class LeasePort(FilterOperation):
    """A VPN tap that passes as long as the heartbeat lease: its element's timeout is the
    lease's lifetime, given by the executor when it applies (0 until then)."""

    port: str
    lifetime: int = 0

    def describe(self) -> str:
        return f"let VPN port {self.port} pass as long as this host's heartbeat lease"

    def commands(self) -> list[tuple[int, Staged]]:
        element = {"elem": {"val": self.port, "timeout": self.lifetime}}
        return [(ADD_ELEMENTS, sg.elements("add", sg.BRIDGE, "own_ports", [element]))]

    def needs_lease(self) -> bool:
        return True

    def execute(self, run: Execution) -> None:
        run.leased_ports.append(self.port)
        run.filters.append(replace(self, lifetime=run.port_lifetime()))


@dataclass(frozen=True)
class ClosePort(FilterOperation):
    set_name: str
    port: str

    def describe(self) -> str:
        return f"close port {self.port} (no longer {WHY[self.set_name]})"

    def commands(self) -> list[tuple[int, Staged]]:
        piece = (sg.BRIDGE, self.set_name, self.port)
        # An element with a timeout may run out before the batch reaches the kernel: it
        # is added (a no-op while it is there) before it is deleted, in one transaction.
        return [(ENSURE, ("add", piece)), (DROP_ELEMENTS, ("delete", piece))]


@dataclass(frozen=True)
class HairpinUplink(FilterOperation):
    """An uplink that a frame this host NATed may go back out of (see nft.py)."""

    port: str

    def describe(self) -> str:
        return f"let what this host NATs go back out uplink {self.port}"

    def commands(self) -> list[tuple[int, Staged]]:
        return [
            (ADD_ELEMENTS, ("add", (sg.BRIDGE, "hairpin_uplinks", f"{self.port} . {self.port}")))
        ]


@dataclass(frozen=True)
class UnhairpinUplink(FilterOperation):
    port: str

    def describe(self) -> str:
        return f"stop sending what this host NATs back out uplink {self.port}"

    def commands(self) -> list[tuple[int, Staged]]:
        piece = (sg.BRIDGE, "hairpin_uplinks", f"{self.port} . {self.port}")
        return [(DROP_ELEMENTS, ("delete", piece))]


def routed_uplinks(desired: DesiredHost) -> frozenset[str]:
    """The segment link or flat uplink of each bridge this host routes for (it holds the
    gateway): guests behind it reach the floating IPs NATed here through it, both ways."""
    found: set[str] = set()
    for net in desired.networks:
        if not net.owns_bridge or net.gateway is None:
            continue
        if net.segment is not None:
            found.add(net.segment.ifname)
        elif net.bridge_interface is not None:
            found.add(net.bridge_interface)
    return frozenset(found)


def renewal(ports: tuple[str, ...], lifetime: int) -> list[dict[str, Any]]:
    """The nft commands that give VPN taps' elements a new timeout: added if need be,
    deleted and added again with it, in one transaction (a kernel that does not update a
    timeout on add still ends with the new one)."""
    if not ports:
        return []
    timed = [{"elem": {"val": port, "timeout": lifetime}} for port in ports]
    return [*removal(ports), sg.elements("add", sg.BRIDGE, "own_ports", timed)]


def removal(ports: tuple[str, ...]) -> list[dict[str, Any]]:
    """The nft commands that take VPN taps' elements out, there or not (added first)."""
    return [
        sg.elements("add", sg.BRIDGE, "own_ports", list(ports)),
        sg.elements("delete", sg.BRIDGE, "own_ports", list(ports)),
    ]


def foreign_ports(desired: DesiredHost, observed: ObservedHost) -> frozenset[str]:
    """The ports of every bridge here that netcon does not own (made by someone else,
    or a Flat network's, which is the admin's)."""
    ours = owned_bridges(desired)
    bridges = {
        link.index
        for link in observed.links.values()
        if link.kind == "bridge" and link.name not in ours and not observed.owns(link)
    }
    return frozenset(link.name for link in observed.links.values() if link.master in bridges)


def wanted(
    desired: DesiredHost, observed: ObservedHost, trusted: tuple[str, ...], *, leased: bool = False
) -> OpenPorts:
    complete = desired.reach is None
    bridges_here: bool | None = bool(owned_bridges(desired))
    if not bridges_here and not complete:
        bridges_here = None  # the scope does not say about the rest of the host
    return OpenPorts(
        own=own_ports(desired),
        trusted=frozenset(trusted),
        foreign=foreign_ports(desired, observed) if complete else None,
        bridges_here=bridges_here,
        complete=complete,
        closable=None if desired.reach is None else scoped_own(desired.reach.links),
        leased=vpn_taps(desired) if leased else frozenset(),
        uplinks=routed_uplinks(desired),
    )


def plan(
    opened: OpenPorts, observed: FilterState | None, security: list[Operation]
) -> list[Operation]:
    """The element changes that make the open sets what ``opened`` says, in the bridge
    table as it is or as ``security`` (the filter's own operations) leaves it."""
    if observed is None or not observed.readable:
        return []
    if isinstance(observed, VouchedState):
        return []  # the sets are what the last apply of this same plan made them
    state = observed.bridge
    for op in security:
        if isinstance(op, CreateWholeFilter) or (
            isinstance(op, CreateFilterTable) and (op.family, op.name) == sg.BRIDGE
        ):
            state = TableState(exists=True)
        elif isinstance(op, DeleteFilterTable) and (op.family, op.name) == sg.BRIDGE:
            return []
    if not state.exists:
        return []
    ops: list[Operation] = []
    sets: list[tuple[str, frozenset[str] | None, frozenset[str] | None]] = [
        ("own_ports", opened.own, opened.closable),
        ("trusted_ports", opened.trusted, None),
        ("foreign_ports", opened.foreign, None),
    ]
    for name, want, closable in sets:
        if want is None:
            continue
        have = state.sets.get(name, frozenset())
        gone = have - want if closable is None else (have & closable) - want
        # A port whose kind of element is wrong (leased or not) is made again, as a whole.
        timed = state.expiring.get(name, frozenset())
        remade = {
            p for p in want & have if name == "own_ports" and (p in opened.leased) != (p in timed)
        }
        ops += [ClosePort(name, port) for port in sorted(gone | remade)]
        for port in sorted((want - have) | remade):
            leased = name == "own_ports" and port in opened.leased
            ops.append(LeasePort(port) if leased else OpenPort(name, port))
    hairpinned = {p.split(" . ")[0] for p in state.sets.get("hairpin_uplinks", frozenset())}
    unwanted = hairpinned - opened.uplinks
    if opened.closable is not None:
        unwanted &= opened.closable
    ops += [UnhairpinUplink(port) for port in sorted(unwanted)]
    ops += [HairpinUplink(port) for port in sorted(opened.uplinks - hairpinned)]
    return ops


def closed_port_warnings(
    desired: DesiredHost, observed: ObservedHost, opened: OpenPorts
) -> list[str]:
    """The ports on netcon's bridges that pass nothing, named for `host plan` (a full
    plan: a scoped one does not see every port)."""
    if not opened.complete:
        return []
    instance_ports = {p.name for p in desired.security.ports} if desired.security else set()
    known = instance_ports | opened.own | opened.trusted
    ours = owned_bridges(desired)
    bridges = {
        link.index: link.name
        for link in observed.links.values()
        if link.kind == "bridge" and link.name in ours
    }
    found = []
    for link in sorted(observed.links.values(), key=lambda k: k.name):
        bridge = bridges.get(link.master)
        if bridge is not None and link.name not in known:
            found.append(
                f"port {link.name} on {bridge} passes no frame: it is no current instance's "
                "port on this host (tap + MAC), nor netcon's own, nor in trusted_ports; "
                "unplug it, or name it in trusted_ports"
            )
    return found
