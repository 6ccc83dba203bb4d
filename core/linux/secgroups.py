"""Security groups on the host: the typed operations, the plan and their nft commands.

plan() compares the filter the database wants (secgroup_desired.py) with what the two
tables hold (secgroup_nft.py) and says, element by element, what to change: a port to
filter, a member to add to a group, a rule to allow. commands() turns those operations
into one nft batch, ordered so that nothing is removed while something still refers to
it and nothing refers to what is not made yet.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import secrules
from core.errors import HostError
from core.linux import dnsmasq, filter_record, nfttext, spoof6, sysctl
from core.linux import secgroup_nft as sg
from core.linux.operations import Operation, Phase
from core.linux.secgroup_desired import DesiredFilter, FilteredGroup, FilteredPort
from core.linux.secgroup_keyed import KeyedState

if TYPE_CHECKING:
    from core.linux.execution import Execution
    from core.linux.nftelements import Lookup

Command = dict[str, Any]
# (table, set or map, element as text); a map element is "key : chain".
Piece = tuple[sg.Table, str, str]
# A command, or an element to add or delete ("add"/"delete", piece).
Staged = Command | tuple[str, Piece]
MARKER = "filter-tables"
_GROUP_CHAIN = re.compile(r"g(\d+)\Z")
_GROUP_SET = re.compile(r"g(\d+)-((?:ports|icmp|any)6?)\Z")
_MEMBER_SET = re.compile(r"m(\d+)(-6)?\Z")
HEAD = sg.HEAD_KINDS


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
        return [(MAKE_SETS, sg.add_set(sg.GROUPS, name, spec_of(sg.GROUPS, name)))]


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


def spec_of(table: sg.Table, name: str) -> sg.SetSpec:
    fixed = sg.FIXED_SETS[table].get(name)
    if fixed is not None:
        return fixed
    match = _GROUP_SET.match(name)
    if match is not None:
        return sg.GROUP_SETS[match.group(2)]
    return sg.MEMBER_SET6 if name.endswith("-6") else sg.MEMBER_SET


# -- the host's side -------------------------------------------------------------------------


def marker(state_dir: Path) -> Path:
    """Present once netcon has made its filter tables in this namespace."""
    return state_dir / MARKER


def observe(
    binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    needed: bool,
    may_change: bool,
    lookup: Callable[[], Lookup] | None = None,
    generation: int | None = None,
) -> sg.FilterState | None:
    """The two tables, or None when nft is missing (or, without CAP_NET_ADMIN, unreadable:
    then ``FilterState.readable`` is False). With ``lookup``, the kernel is first asked
    which of them exist, and only those are listed: on a first apply, nothing is.

    ``generation``: the kernel's ruleset generation, read before anything else; when it
    is the one recorded after the last apply, nothing is listed (filter_record)."""
    if not needed and not marker(state_dir).exists():
        return sg.FilterState(sg.TableState(), sg.TableState())
    if not dnsmasq.find_binary(binary):
        return None
    recorded = filter_record.read(state_dir) if generation is not None else None
    if recorded is not None and recorded.generation == generation:
        return filter_record.VouchedState(
            sg.TableState(),
            sg.TableState(),
            sysctl.read_bridge_netfilter(netns),
            digest=recorded.digest,
            listing=functools.partial(
                observe, binary, netns, state_dir, needed=needed, may_change=may_change,
                lookup=lookup,
            ),
        )
    # The IPv4-only groups table of earlier versions is looked for too, to be replaced.
    tables = (*sg.TABLES, sg.OLD_GROUPS)
    present = dict.fromkeys(tables, True)
    if lookup is not None:
        with contextlib.suppress(HostError):  # then listing them says why
            present = lookup().tables_present(tables)
    listed = [table for table in tables if present[table]]
    try:
        states = dict(zip(listed, sg.read_tables(binary, netns, listed), strict=True))
    except HostError:
        if may_change:
            raise
        return sg.FilterState(sg.TableState(), sg.TableState(), readable=False)
    return sg.FilterState(
        states.get(sg.BRIDGE, sg.TableState()),
        states.get(sg.GROUPS, sg.TableState()),
        sysctl.read_bridge_netfilter(netns),
        old_groups=states.get(sg.OLD_GROUPS, sg.TableState()).exists,
    )


def commands(ops: Sequence[object]) -> list[Command]:
    """One batch for every filter operation, in phase order, with one command per set for
    the elements a phase adds to it or deletes from it."""
    plain: dict[int, list[Command]] = {}
    staged: dict[tuple[int, str, sg.Table, str], list[str]] = {}
    for op in ops:
        if not isinstance(op, FilterOperation):
            continue
        for phase, item in op.commands():
            if isinstance(item, dict):
                plain.setdefault(phase, []).append(item)
            else:
                verb, (table, name, text) = item
                staged.setdefault((phase, verb, table, name), []).append(text)
    batch: list[Command] = []
    for phase in sorted({*plain, *(key[0] for key in staged)}):
        batch += plain.get(phase, [])
        for (at, verb, table, name), texts in staged.items():
            if at == phase:
                batch.append(
                    sg.elements(verb, table, name, _elements_json(verb, table, name, texts))
                )
    return batch


def _elements_json(verb: str, table: sg.Table, name: str, texts: list[str]) -> list[Any]:
    """The elements as nft writes them (see nfttext.py): netcon's element texts are nft's
    syntax already but for the quotes of interface names and a map's verdicts."""
    if name in sg.INSTANCE_MAPS:
        pairs = [text.partition(" : ") for text in texts]
        if verb == "delete":
            return [nfttext.Syntax(key) for key, _, _ in pairs]
        return [nfttext.Syntax(f"{key} : goto {chain}") for key, _, chain in pairs]
    types, _ = spec_of(table, name)
    if "ifname" not in types:
        return [nfttext.Syntax(text) for text in texts]
    if types == ("ifname",):
        return [nfttext.Syntax(f'"{text}"') for text in texts]
    if "ifname" not in types[1:]:
        # "tap1 . 10.0.0.5": the port's name quoted, the rest as it is.
        return [nfttext.Syntax('"' + text.replace(" . ", '" . ', 1)) for text in texts]
    names = [kind == "ifname" for kind in types]
    return [
        nfttext.Syntax(
            " . ".join(
                f'"{part}"' if is_name else part
                for part, is_name in zip(text.split(" . "), names, strict=True)
            )
        )
        for text in texts
    ]


# -- the plan --------------------------------------------------------------------------------


def plan(
    desired: DesiredFilter | None,
    observed: sg.FilterState | None,
    problems: list[str],
    *,
    bridges_here: bool | None = False,
) -> list[Operation]:
    """``bridges_here``: whether netcon has bridges on this host, whose unknown ports the
    bridge table closes (None: not known, in a scoped plan)."""
    if desired is None:
        return []
    if desired.keyed:
        return _keyed_plan(desired, observed, problems)
    bridge_needed = bool(desired.ports) or bridges_here is True
    if observed is None:
        if bridge_needed:
            problems.append("nft: program not found; install nftables (security groups need it)")
        return []
    if not observed.readable:
        return []
    ops = _bridge_netfilter(desired, observed.bridge_netfilter, problems)
    if ops is None:
        return []
    if isinstance(observed, filter_record.VouchedState):
        # The planner passes one on only when its digest is this plan's: the tables are
        # what the last apply of this very plan left.
        return ops
    bridge, groups = observed.bridge, observed.groups
    if not bridge_needed and not bridge.exists and not groups.exists:
        return ops + ([DeleteFilterTable(*sg.OLD_GROUPS)] if observed.old_groups else [])
    tables = {}
    for table, state in ((sg.BRIDGE, bridge), (sg.GROUPS, groups)):
        if table == sg.BRIDGE and not bridge_needed and not state.exists:
            # Made only when something here needs it: it closes every unknown port.
            tables[table] = state
            continue
        if not state.layout_ok(table) or not _dynamic_ok(table, state):
            ops.append(CreateFilterTable(table[0], table[1], replace=state.exists))
            state = sg.TableState(exists=True)
        tables[table] = state
    bridge, groups = tables[sg.BRIDGE], tables[sg.GROUPS]
    ops += _dhcp_servers(desired, bridge, groups)
    ops += _groups(desired, groups)
    ops += _members(desired, groups)
    ops += _combinations(desired, groups)
    ops += _ports(desired, bridge, groups)
    if not bridge_needed and bridges_here is False and bridge.exists:
        ops.append(DeleteFilterTable(*sg.BRIDGE))
    if observed.old_groups:
        ops.append(DeleteFilterTable(*sg.OLD_GROUPS))
    return ops


def _keyed_plan(
    desired: DesiredFilter, observed: sg.FilterState | None, problems: list[str]
) -> list[Operation]:
    """The element changes at the keys a change names (secgroup_keyed.py): the tables are
    there and whole, or the observation would have asked for the full comparison."""
    if not isinstance(observed, KeyedState):
        # A part of the filter is no reason to change the rest: nothing to plan from it.
        return []
    # (The IPv4-only table of earlier netcon is the full comparison's to take away.)
    ops = _bridge_netfilter(desired, observed.bridge_netfilter, problems)
    if ops is None:
        return []
    bridge, groups = observed.bridge, observed.groups
    ops += _dhcp_servers(desired, bridge, groups)
    ops += _groups(desired, groups)
    ops += _members(desired, groups)
    ops += _combinations(desired, groups)
    ops += _ports(desired, bridge, groups)
    return ops


def _bridge_netfilter(
    desired: DesiredFilter, state: bool | None, problems: list[str]
) -> list[Operation] | None:
    """br_netfilter on where instance ports are filtered; None (and the problem said)
    when the kernel has none, and so no security group can be enforced here."""
    if not desired.ports:
        return []
    if state is None:
        problems.append(
            "security groups need br_netfilter, which this kernel lacks "
            "(modprobe br_netfilter, or a kernel with CONFIG_BRIDGE_NETFILTER)"
        )
        return None
    return [] if state else [EnableBridgeNetfilter()]


def _dynamic_ok(table: sg.Table, state: sg.TableState) -> bool:
    """Every set netcon adds per group has the type netcon gives it."""
    if table != sg.GROUPS:
        return all(name in sg.FIXED_SETS[table] for name in state.types)
    for name, spec in state.types.items():
        if name in sg.FIXED_SETS[table] or name in sg.INSTANCE_MAPS:
            continue
        if not (_GROUP_SET.match(name) or _MEMBER_SET.match(name)):
            return False
        if spec != spec_of(table, name):
            return False
    return True


def _dhcp_servers(
    desired: DesiredFilter, bridge: sg.TableState, groups: sg.TableState
) -> list[Operation]:
    ops: list[Operation] = []
    wanted = set(desired.dhcp_servers)
    states = {sg.BRIDGE: bridge, sg.GROUPS: groups}
    for address in sorted(
        wanted | bridge.sets.get("dhcp_servers", set()) | groups.sets.get("dhcp_servers", set())
    ):
        have = tuple(t for t, s in states.items() if address in s.sets.get("dhcp_servers", ()))
        if address in wanted:
            missing = tuple(t for t in sg.TABLES if t not in have)
            if missing:
                ops.append(AddDhcpServer(address, missing))
        elif have:
            ops.append(RemoveDhcpServer(address, have))
    return ops


def _rule_elements(
    group: FilteredGroup, labels: dict[int, str]
) -> tuple[dict[str, dict[str, str]], dict[str, AddGroupRule]]:
    """(kind -> element -> words, comment -> chain rule) for one group's rules."""
    elements: dict[str, dict[str, str]] = {kind: {} for kind in HEAD}
    # What each set holds so far: (protocol, cidr, ranges) of its elements.
    spans: dict[str, list[Span]] = {kind: [] for kind in HEAD}
    lines: dict[str, AddGroupRule] = {}
    for rule in group.rules:
        family = rule.ethertype
        what = secrules.what(rule.protocol, rule.from_port, rule.to_port, family)
        if rule.source is not None:
            source_label = str(labels.get(rule.source, rule.source))
            words = secrules.rule_words(
                rule.protocol, rule.from_port, rule.to_port, None, source_label, family
            )
            comment = f"rule {rule.id}: {what} from group {rule.source}"
            source = "@" + sg.member_set(rule.source, family)
        else:
            assert rule.cidr is not None
            kind, element = _element(rule.protocol, rule.from_port, rule.to_port, rule.cidr)
            words = secrules.rule_words(
                rule.protocol, rule.from_port, rule.to_port, rule.cidr, None, family
            )
            covered = secrules.ranges(rule.protocol, rule.from_port, rule.to_port)
            mine = (rule.protocol, _bounds(rule.cidr), covered)
            if not any(_clash(mine, other) for other in spans[kind]):
                spans[kind].append(mine)
                elements[kind][element] = words
                continue
            comment = f"rule {rule.id}: {what} from {rule.cidr}"
            source = rule.cidr
        lines[comment] = AddGroupRule(
            group.id,
            group.label,
            comment,
            source,
            rule.protocol,
            rule.from_port,
            rule.to_port,
            words,
            family,
        )
    return elements, lines


def _element(protocol: str, from_port: int, to_port: int, cidr: str) -> tuple[str, str]:
    """(kind of set, element) of a CIDR rule; the kinds of IPv6 end in 6."""
    covered = secrules.ranges(protocol, from_port, to_port)
    suffix = "6" if secrules.family_of(cidr) == secrules.IPV6 else ""
    if protocol in ("tcp", "udp"):
        low, high = covered.first
        return "ports" + suffix, f"{cidr} . {secrules.NUMBERS[protocol]} . {low}-{high}"
    if protocol == "icmp":
        (tl, th), (cl, ch) = covered
        return "icmp" + suffix, f"{cidr} . {tl}-{th} . {cl}-{ch}"
    return "any" + suffix, cidr


# (protocol, first and last address of the CIDR, ranges) of one element of a set.
Span = tuple[str, tuple[int, int], secrules.Ranges]


@functools.lru_cache(maxsize=4096)
def _bounds(cidr: str) -> tuple[int, int]:
    network = ipaddress.ip_network(cidr)
    return int(network.network_address), int(network.broadcast_address)


def _clash(mine: Span, other: Span) -> bool:
    """Whether two elements of one interval set would overlap (the kernel refuses that)."""
    return mine[0] == other[0] and all(
        a[0] <= b[1] and b[0] <= a[1]
        for a, b in zip((mine[1], *mine[2]), (other[1], *other[2]), strict=True)
    )


def _words(kind: str, element: str) -> str:
    """An element that is on the host but not wanted, said as the rule it was."""
    parts = element.split(" . ")
    family = secrules.IPV6 if kind.endswith("6") else secrules.IPV4
    if kind.startswith("any"):
        return f"{secrules.what('any', -1, -1, family)} from {parts[0]}"
    if kind.startswith("ports"):
        names = {str(v): k for k, v in secrules.NUMBERS.items()}
        low, _, high = parts[2].partition("-")
        ports = low if low == high else parts[2]
        return f"{names.get(parts[1], parts[1])} {ports} from {parts[0]}"
    icmp = secrules.icmp_name(family)
    return f"{icmp} types {parts[1]} codes {parts[2]} from {parts[0]}"


def _groups(desired: DesiredFilter, state: sg.TableState) -> list[Operation]:
    ops: list[Operation] = []
    labels = desired.labels()
    wanted_ids = {g.id for g in desired.groups}
    for group in desired.groups:
        chain = sg.group_chain(group.id)
        rules = state.chains.get(chain)
        names = [sg.group_set(group.id, kind) for kind in HEAD]
        present = tuple(n for n in names if n in state.types)
        have_sets: dict[str, frozenset[str]] = {}
        have_lines: tuple[tuple[str, int], ...] = ()
        head = [c for c, _ in sg.group_head(group.id)]
        if rules is None or len(present) < len(names) or [c for c, _ in rules[: len(head)]] != head:
            ops.append(CreateGroupFilter(group.id, group.label, rules is not None, present))
        else:
            have_sets = {
                kind: state.sets.get(sg.group_set(group.id, kind), frozenset()) for kind in HEAD
            }
            have_lines = rules[len(head) :]
        elements, lines = _rule_elements(group, labels)
        for kind in HEAD:
            have = have_sets.get(kind, frozenset())
            for element in sorted(have - set(elements[kind])):
                ops.append(
                    RemoveRuleElement(group.id, group.label, kind, element, _words(kind, element))
                )
            for element in sorted(set(elements[kind]) - have):
                ops.append(
                    AddRuleElement(group.id, group.label, kind, element, elements[kind][element])
                )
        seen: set[str] = set()
        for comment, handle in have_lines:
            if comment in lines and comment not in seen:
                seen.add(comment)
                continue
            ops.append(RemoveGroupRule(group.id, group.label, handle, comment))
        ops += [line for comment, line in lines.items() if comment not in seen]
    observed_ids = {int(m.group(1)) for name in state.chains if (m := _GROUP_CHAIN.match(name))}
    observed_ids |= {int(m.group(1)) for name in state.types if (m := _GROUP_SET.match(name))}
    for group_id in sorted(observed_ids - wanted_ids):
        sets = tuple(
            sg.group_set(group_id, kind)
            for kind in HEAD
            if sg.group_set(group_id, kind) in state.types
        )
        ops.append(DeleteGroupFilter(group_id, sg.group_chain(group_id) in state.chains, sets))
    return ops


def _members(desired: DesiredFilter, state: sg.TableState) -> list[Operation]:
    """A source group's member sets, one per family: its members' fixed IPv4 addresses,
    and their IPv6 ones."""
    ops: list[Operation] = []
    wanted_ids = set()
    for source in desired.sources:
        wanted_ids.add(source.id)
        for family, members in (
            (secrules.IPV4, source.members),
            (secrules.IPV6, source.members_v6),
        ):
            name = sg.member_set(source.id, family)
            have = state.sets.get(name)
            if name not in state.types:
                ops.append(CreateMemberSet(source.id, source.label, family))
                have = frozenset()
            have = have or frozenset()
            wanted = dict(members)
            for address in sorted(have - set(wanted), key=_address_key):
                ops.append(RemoveMember(source.id, source.label, address))
            for address in sorted(set(wanted) - have, key=_address_key):
                ops.append(AddMember(source.id, source.label, address, wanted[address]))
    for name in sorted(state.types):
        match = _MEMBER_SET.match(name)
        if match and int(match.group(1)) not in wanted_ids:
            family = secrules.IPV6 if match.group(2) else secrules.IPV4
            ops.append(DeleteMemberSet(int(match.group(1)), family))
    return ops


def _address_key(address: str) -> int:
    if ":" in address:
        return int(ipaddress.IPv6Address(address))
    return int.from_bytes(socket.inet_aton(address), "big")


def _combinations(desired: DesiredFilter, state: sg.TableState) -> list[Operation]:
    ops: list[Operation] = []
    wanted = {sg.combination_chain(p.groups): p.groups for p in desired.ports}
    for chain, group_ids in sorted(wanted.items()):
        have = state.chains.get(chain)
        expected = [c for c, _ in sg.combination_rules(group_ids)]
        if have is not None and [c for c, _ in have] == expected:
            continue
        labels = tuple(desired.label(g) for g in group_ids)
        ops.append(CreateCombination(chain, group_ids, labels, exists=have is not None))
    for chain in sorted(state.chains):
        if chain.startswith("in-") and chain not in wanted:
            ops.append(DeleteCombination(chain))
    return ops


def _ports(desired: DesiredFilter, bridge: sg.TableState, groups: sg.TableState) -> list[Operation]:
    """One operation per port whose elements differ, in either table."""
    owner: dict[str, str] = {}  # fixed IP -> port, for the instance map's keys
    have: dict[str, set[Piece]] = {}
    for text in bridge.sets.get("ports", ()):
        have.setdefault(text, set()).add((sg.BRIDGE, "ports", text))
    for name in ("port_mac", "port_ip", spoof6.SET):
        for text in bridge.sets.get(name, ()):
            holder, _, value = text.partition(" . ")
            have.setdefault(holder, set()).add((sg.BRIDGE, name, text))
            if name in ("port_ip", spoof6.SET):
                owner.setdefault(value, holder)
    wanted: dict[str, set[Piece]] = {}
    for p in desired.ports:
        owner[p.address] = p.name
        chain = sg.combination_chain(p.groups)
        wanted[p.name] = {
            (sg.BRIDGE, "ports", p.name),
            (sg.BRIDGE, "port_mac", f"{p.name} . {p.mac}"),
            (sg.BRIDGE, "port_ip", f"{p.name} . {p.address}"),
            (sg.GROUPS, sg.INSTANCE_MAP, f"{p.address} : {chain}"),
            *((sg.BRIDGE, spoof6.SET, text) for text in spoof6.port_elements(p)),
            *((sg.GROUPS, sg.INSTANCE_MAP6, f"{a} : {chain}") for a in _addresses_v6(p)),
        }
        for address in _addresses_v6(p):
            owner[address] = p.name
    for address, chain in groups.targets.items():
        holder = owner.get(address, f"(none for {address})")
        piece = (sg.GROUPS, sg.instance_map(address), f"{address} : {chain}")
        have.setdefault(holder, set()).add(piece)
    ports = {p.name: p for p in desired.ports}
    names = desired.labels()
    ops: list[Operation] = []
    for name in sorted(set(have) | set(wanted)):
        before, after = have.get(name, set()), wanted.get(name, set())
        if before == after:
            continue
        removes = tuple(sorted(before - after))
        # A map key is replaced, not added twice: its old element goes first.
        adds = tuple(sorted(after - before))
        port = ports.get(name)
        if port is None:
            address = next((t.split(" . ")[1] for _, n, t in before if n == "port_ip"), "")
            address = address or next(
                (t.split(" : ")[0] for _, n, t in before if n == sg.INSTANCE_MAP), ""
            )
            ops.append(RemovePortFilter(name, "", address, removes, ()))
            continue
        labels = tuple(names.get(g, str(g)) for g in port.groups)
        if not before:
            ops.append(AddPortFilter(name, port.instance, port.address, (), adds, port.mac, labels))
        else:
            ops.append(ChangePortFilter(name, port.instance, port.address, removes, adds, labels))
    return ops


def _addresses_v6(port: FilteredPort) -> list[str]:
    """A port's IPv6 destinations the groups judge: its link-local address and, on a
    dual-stack network, its global one (the ``port_ip6`` addresses)."""
    return [text.partition(" . ")[2] for text in spoof6.port_elements(port)]


def is_filter_operation(op: Operation) -> bool:
    return isinstance(op, FilterOperation | EnableBridgeNetfilter)
