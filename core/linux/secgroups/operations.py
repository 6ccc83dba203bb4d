"""The typed operations on the security-group tables, each with its nft commands and the
phase of the batch they go in (render.py orders them into one batch): a port to
filter, a member to add to a group, a rule to allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import secrules
from core.linux import sysctl
from core.linux.operations import Operation, Phase
from core.linux.secgroups import tables as sg
from core.linux.secgroups.observe import marker

if TYPE_CHECKING:
    from core.linux.execution import Execution

Command = dict[str, Any]
# (table, set or map, element as text); a map element is "key : chain".
Piece = tuple[sg.Table, str, str]
# A command, or an element to add or delete ("add"/"delete", piece).
Staged = Command | tuple[str, Piece]


@dataclass(frozen=True)
class FilterOperation(Operation):
    """An operation on the security-group tables: its nft commands, each with a phase
    of the batch; the filter's operations of an apply go in one batch (commands())."""

    phase = Phase.NFT

    def commands(self) -> list[tuple[int, Staged]]:
        raise NotImplementedError

    def execute(self, run: Execution) -> None:
        run.filters.append(self)


# Phases of the batch: removals of elements, then of rules, chains and sets that nothing
# refers to any more; then sets and chains to be referred to, then what refers to them.
DROP_ELEMENTS, DROP_RULES, DROP_COMBINATIONS, DROP_GROUPS, DROP_MEMBER_SETS = 10, 20, 30, 40, 45
MAKE_SETS, MAKE_COMBINATIONS, ADD_ELEMENTS, ADD_PORTS = 50, 60, 70, 80
# Last: a table nothing needs goes once its elements are out.
DROP_TABLE = 90


@dataclass(frozen=True)
class EnableBridgeNetfilter(Operation):
    phase = Phase.PREPARE_FILTER

    def describe(self) -> str:
        return (
            "set net.bridge.bridge-nf-call-iptables and bridge-nf-call-ip6tables = 1 "
            "(security groups judge bridged IPv4 and IPv6 with conntrack)"
        )

    def execute(self, run: Execution) -> None:
        sysctl.enable_bridge_netfilter(run.netns)


@dataclass(frozen=True)
class CreateFilterTable(FilterOperation):
    family: str
    name: str
    replace: bool

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        what = "anti-spoofing of instance ports" if self.family == "bridge" else "security groups"
        return f"{verb} nftables table {self.family} {self.name} ({what})"

    def commands(self) -> list[tuple[int, Staged]]:
        return [(0, c) for c in sg.create_table((self.family, self.name), self.replace)]

    def execute(self, run: Execution) -> None:
        super().execute(run)
        # Before the batch: the marker says netcon made (or is making) its tables here.
        state_dir = run.nat_marker.parent
        state_dir.mkdir(parents=True, exist_ok=True)
        marker(state_dir).touch()


@dataclass(frozen=True)
class DeleteFilterTable(FilterOperation):
    family: str
    name: str

    def describe(self) -> str:
        if (self.family, self.name) == sg.OLD_GROUPS:
            return (
                f"delete nftables table {self.family} {self.name} (IPv4 only; table "
                f"{sg.GROUPS[0]} {sg.GROUPS[1]} judges both families)"
            )
        return (
            f"delete nftables table {self.family} {self.name} (no netcon bridge and no "
            "instance port here any more: no port to filter or close)"
        )

    def commands(self) -> list[tuple[int, Staged]]:
        return [(DROP_TABLE, {"delete": {"table": {"family": self.family, "name": self.name}}})]


def _element_commands(phase: int, verb: str, pieces: Iterable[Piece]) -> list[tuple[int, Staged]]:
    """Element changes, staged: commands() turns them into one command per set."""
    return [(phase, (verb, piece)) for piece in pieces]


@dataclass(frozen=True)
class _PortChange(FilterOperation):
    port: str
    instance: str
    address: str
    removes: tuple[Piece, ...] = ()
    adds: tuple[Piece, ...] = ()

    def commands(self) -> list[tuple[int, Staged]]:
        return _element_commands(DROP_ELEMENTS, "delete", self.removes) + _element_commands(
            ADD_PORTS, "add", self.adds
        )


@dataclass(frozen=True)
class AddPortFilter(_PortChange):
    mac: str = ""
    groups: tuple[str, ...] = ()

    def describe(self) -> str:
        groups = ", ".join(self.groups) or "no group: everything but replies is denied"
        return (
            f"filter port {self.port} of {self.instance} ({self.address}, {self.mac}); "
            f"ingress by {groups}"
        )


@dataclass(frozen=True)
class ChangePortFilter(_PortChange):
    groups: tuple[str, ...] = ()

    def describe(self) -> str:
        groups = ", ".join(self.groups) or "no group"
        return f"update filter of port {self.port} of {self.instance} ({self.address}): {groups}"


@dataclass(frozen=True)
class RemovePortFilter(_PortChange):
    def describe(self) -> str:
        return f"stop filtering port {self.port} ({self.address}): no instance of this host has it"


@dataclass(frozen=True)
class AddDhcpServer(FilterOperation):
    address: str
    tables: tuple[sg.Table, ...]

    def describe(self) -> str:
        return f"let DHCP answers from {self.address} (a network's dnsmasq) reach instances"

    def commands(self) -> list[tuple[int, Staged]]:
        pieces = [(t, "dhcp_servers", self.address) for t in self.tables]
        return _element_commands(ADD_ELEMENTS, "add", pieces)


@dataclass(frozen=True)
class RemoveDhcpServer(FilterOperation):
    address: str
    tables: tuple[sg.Table, ...]

    def describe(self) -> str:
        return f"stop letting DHCP answers from {self.address} reach instances"

    def commands(self) -> list[tuple[int, Staged]]:
        pieces = [(t, "dhcp_servers", self.address) for t in self.tables]
        return _element_commands(DROP_ELEMENTS, "delete", pieces)


@dataclass(frozen=True)
class CreateGroupFilter(FilterOperation):
    group_id: int
    label: str
    # Repair of a chain that is there but not in shape: flushed, its sets made anew.
    chain_exists: bool = False
    sets_present: tuple[str, ...] = ()

    def describe(self) -> str:
        verb = "rebuild" if self.chain_exists or self.sets_present else "create"
        return f"{verb} the filter of security group {self.label}"

    def commands(self) -> list[tuple[int, Staged]]:
        chain = sg.group_chain(self.group_id)
        found: list[tuple[int, Staged]] = []
        if self.chain_exists:
            found.append((MAKE_SETS, sg.flush_chain(sg.GROUPS, chain)))
        found += [(MAKE_SETS, sg.delete_set(sg.GROUPS, name)) for name in self.sets_present]
        for kind, spec in sg.GROUP_SETS.items():
            found.append(
                (MAKE_SETS, sg.add_set(sg.GROUPS, sg.group_set(self.group_id, kind), spec))
            )
        if not self.chain_exists:
            found.append((MAKE_SETS, sg.add_chain(sg.GROUPS, chain)))
        for comment, expr in sg.group_head(self.group_id):
            found.append((MAKE_SETS, sg.add_rule(sg.GROUPS, chain, comment, expr)))
        return found


@dataclass(frozen=True)
class DeleteGroupFilter(FilterOperation):
    group_id: int
    chain_exists: bool
    sets_present: tuple[str, ...]

    def describe(self) -> str:
        return f"delete the filter of security group {self.group_id} (no instance here uses it)"

    def commands(self) -> list[tuple[int, Staged]]:
        chain = sg.group_chain(self.group_id)
        found: list[tuple[int, Staged]] = []
        if self.chain_exists:
            found += [
                (DROP_GROUPS, sg.flush_chain(sg.GROUPS, chain)),
                (DROP_GROUPS, sg.delete_chain(sg.GROUPS, chain)),
            ]
        return found + [(DROP_GROUPS, sg.delete_set(sg.GROUPS, n)) for n in self.sets_present]


@dataclass(frozen=True)
class AddRuleElement(FilterOperation):
    group_id: int
    label: str
    kind: str  # ports, icmp or any
    element: str
    words: str

    def describe(self) -> str:
        return f"allow {self.words} into {self.label}"

    def commands(self) -> list[tuple[int, Staged]]:
        piece = (sg.GROUPS, sg.group_set(self.group_id, self.kind), self.element)
        return _element_commands(ADD_ELEMENTS, "add", [piece])


@dataclass(frozen=True)
class RemoveRuleElement(FilterOperation):
    group_id: int
    label: str
    kind: str
    element: str
    words: str

    def describe(self) -> str:
        return f"stop allowing {self.words} into {self.label}"

    def commands(self) -> list[tuple[int, Staged]]:
        piece = (sg.GROUPS, sg.group_set(self.group_id, self.kind), self.element)
        return _element_commands(DROP_ELEMENTS, "delete", [piece])


@dataclass(frozen=True)
class AddGroupRule(FilterOperation):
    """A rule that is a chain rule: from a source group's members, or a CIDR rule that
    overlaps another of its group (an interval set cannot hold both)."""

    group_id: int
    label: str
    comment: str
    source: str  # a CIDR, or "@m<id>" ("@m<id>-6")
    protocol: str
    from_port: int
    to_port: int
    words: str
    family: str = secrules.IPV4

    def describe(self) -> str:
        return f"allow {self.words} into {self.label}"

    def commands(self) -> list[tuple[int, Staged]]:
        expr = sg.line_expr(self.source, self.protocol, self.from_port, self.to_port, self.family)
        chain = sg.group_chain(self.group_id)
        return [(ADD_ELEMENTS, sg.add_rule(sg.GROUPS, chain, self.comment, expr))]


@dataclass(frozen=True)
class RemoveGroupRule(FilterOperation):
    group_id: int
    label: str
    handle: int
    comment: str

    def describe(self) -> str:
        return f"remove {self.comment} from {self.label}"

    def commands(self) -> list[tuple[int, Staged]]:
        chain = sg.group_chain(self.group_id)
        return [(DROP_RULES, sg.delete_rule(sg.GROUPS, chain, self.handle))]


def _over(family: str) -> str:
    return " over IPv6" if family == secrules.IPV6 else ""


@dataclass(frozen=True)
class CreateMemberSet(FilterOperation):
    group_id: int
    label: str
    family: str = secrules.IPV4

    def describe(self) -> str:
        return f"track the members of {self.label}{_over(self.family)} (a rule's source)"

    def commands(self) -> list[tuple[int, Staged]]:
        name = sg.member_set(self.group_id, self.family)
        return [(MAKE_SETS, sg.add_set(sg.GROUPS, name, sg.spec_of(sg.GROUPS, name)))]


@dataclass(frozen=True)
class DeleteMemberSet(FilterOperation):
    group_id: int
    family: str = secrules.IPV4

    def describe(self) -> str:
        return (
            f"stop tracking the members of group {self.group_id}{_over(self.family)} "
            "(no rule here names it)"
        )

    def commands(self) -> list[tuple[int, Staged]]:
        name = sg.member_set(self.group_id, self.family)
        return [(DROP_MEMBER_SETS, sg.delete_set(sg.GROUPS, name))]


@dataclass(frozen=True)
class AddMember(FilterOperation):
    group_id: int
    label: str
    address: str
    instance: str

    def describe(self) -> str:
        return f"add {self.address} ({self.instance}) to the members of {self.label}"

    def commands(self) -> list[tuple[int, Staged]]:
        name = sg.member_set(self.group_id, secrules.family_of(self.address))
        return _element_commands(ADD_ELEMENTS, "add", [(sg.GROUPS, name, self.address)])


@dataclass(frozen=True)
class RemoveMember(FilterOperation):
    group_id: int
    label: str
    address: str

    def describe(self) -> str:
        return f"remove {self.address} from the members of {self.label}"

    def commands(self) -> list[tuple[int, Staged]]:
        name = sg.member_set(self.group_id, secrules.family_of(self.address))
        return _element_commands(DROP_ELEMENTS, "delete", [(sg.GROUPS, name, self.address)])


@dataclass(frozen=True)
class CreateCombination(FilterOperation):
    chain: str
    group_ids: tuple[int, ...]
    labels: tuple[str, ...]
    exists: bool = False  # there but not in shape: flushed and filled again

    def describe(self) -> str:
        groups = " + ".join(self.labels) or "no group"
        return f"{'rebuild' if self.exists else 'create'} chain {self.chain} ({groups})"

    def commands(self) -> list[tuple[int, Staged]]:
        first = sg.flush_chain if self.exists else sg.add_chain
        found: list[tuple[int, Staged]] = [(MAKE_COMBINATIONS, first(sg.GROUPS, self.chain))]
        for comment, expr in sg.combination_rules(self.group_ids):
            found.append((MAKE_COMBINATIONS, sg.add_rule(sg.GROUPS, self.chain, comment, expr)))
        return found


@dataclass(frozen=True)
class DeleteCombination(FilterOperation):
    chain: str

    def describe(self) -> str:
        return f"delete chain {self.chain} (no port here has that combination of groups)"

    def commands(self) -> list[tuple[int, Staged]]:
        return [
            (DROP_COMBINATIONS, sg.flush_chain(sg.GROUPS, self.chain)),
            (DROP_COMBINATIONS, sg.delete_chain(sg.GROUPS, self.chain)),
        ]


def is_filter_operation(op: Operation) -> bool:
    return isinstance(op, FilterOperation | EnableBridgeNetfilter)
