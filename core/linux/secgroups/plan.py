"""The filter's plan: the filter the database wants (spec.py) against what the two tables
hold (state.py), said element by element as operations (operations.py). A keyed desired
filter (keyed.py) is compared at the keys its change names only."""

from __future__ import annotations

import ipaddress
import socket

from core import secrules
from core.linux import spoof6
from core.linux.operations import Operation
from core.linux.secgroups import record
from core.linux.secgroups import tables as sg
from core.linux.secgroups.keyed import KeyedState
from core.linux.secgroups.operations import (
    AddDhcpServer,
    AddMember,
    AddPortFilter,
    AddRuleElement,
    ChangePortFilter,
    CreateCombination,
    CreateFilterTable,
    CreateGroupFilter,
    CreateMemberSet,
    DeleteCombination,
    DeleteFilterTable,
    DeleteGroupFilter,
    DeleteMemberSet,
    EnableBridgeNetfilter,
    Piece,
    RemoveDhcpServer,
    RemoveGroupRule,
    RemoveMember,
    RemovePortFilter,
    RemoveRuleElement,
)
from core.linux.secgroups.rules import rule_elements
from core.linux.secgroups.spec import DesiredFilter, FilteredPort
from core.linux.secgroups.state import FilterState, TableState
from core.linux.secgroups.whole import CreateWholeFilter

HEAD = sg.HEAD_KINDS


def plan(
    desired: DesiredFilter | None,
    observed: FilterState | None,
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
    if isinstance(observed, record.VouchedState):
        # The planner passes one on only when its digest is this plan's: the tables are
        # what the last apply of this very plan left.
        return ops
    bridge, groups = observed.bridge, observed.groups
    if not bridge_needed and not bridge.exists and not groups.exists:
        return ops + ([DeleteFilterTable(*sg.OLD_GROUPS)] if observed.old_groups else [])
    if not bridge.exists and not groups.exists:
        # A first apply: both tables written whole in one pass, nothing to compare.
        ops.append(CreateWholeFilter(desired))
        return ops + ([DeleteFilterTable(*sg.OLD_GROUPS)] if observed.old_groups else [])
    tables = {}
    for table, state in ((sg.BRIDGE, bridge), (sg.GROUPS, groups)):
        if table == sg.BRIDGE and not bridge_needed and not state.exists:
            # Made only when something here needs it: it closes every unknown port.
            tables[table] = state
            continue
        if not state.layout_ok(table) or not _dynamic_ok(table, state):
            ops.append(CreateFilterTable(table[0], table[1], replace=state.exists))
            state = TableState(exists=True)
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
    desired: DesiredFilter, observed: FilterState | None, problems: list[str]
) -> list[Operation]:
    """The element changes at the keys a change names (keyed.py): the tables are
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


def _dynamic_ok(table: sg.Table, state: TableState) -> bool:
    """Every set netcon adds per group has the type netcon gives it."""
    if table != sg.GROUPS:
        return all(name in sg.FIXED_SETS[table] for name in state.types)
    for name, spec in state.types.items():
        if name in sg.FIXED_SETS[table] or name in sg.INSTANCE_MAPS:
            continue
        if not (sg.GROUP_SET.match(name) or sg.MEMBER_SET_NAME.match(name)):
            return False
        if spec != sg.spec_of(table, name):
            return False
    return True


def _dhcp_servers(
    desired: DesiredFilter, bridge: TableState, groups: TableState
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


def _groups(desired: DesiredFilter, state: TableState) -> list[Operation]:
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
        elements, lines = rule_elements(group, labels)
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
    observed_ids = {int(m.group(1)) for name in state.chains if (m := sg.GROUP_CHAIN.match(name))}
    observed_ids |= {int(m.group(1)) for name in state.types if (m := sg.GROUP_SET.match(name))}
    for group_id in sorted(observed_ids - wanted_ids):
        sets = tuple(
            sg.group_set(group_id, kind)
            for kind in HEAD
            if sg.group_set(group_id, kind) in state.types
        )
        ops.append(DeleteGroupFilter(group_id, sg.group_chain(group_id) in state.chains, sets))
    return ops


def _members(desired: DesiredFilter, state: TableState) -> list[Operation]:
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
        match = sg.MEMBER_SET_NAME.match(name)
        if match and int(match.group(1)) not in wanted_ids:
            family = secrules.IPV6 if match.group(2) else secrules.IPV4
            ops.append(DeleteMemberSet(int(match.group(1)), family))
    return ops


def _address_key(address: str) -> int:
    if ":" in address:
        return int(ipaddress.IPv6Address(address))
    return int.from_bytes(socket.inet_aton(address), "big")


def _combinations(desired: DesiredFilter, state: TableState) -> list[Operation]:
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


def _ports(desired: DesiredFilter, bridge: TableState, groups: TableState) -> list[Operation]:
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
    if groups.targets:
        # A map key's owner: the wanted port of that address first, else the one the
        # bridge table says has it.
        for p in desired.ports:
            owner[p.address] = p.name
            for text in spoof6.port_elements(p):
                owner[text.partition(" . ")[2]] = p.name
    for address, chain in groups.targets.items():
        holder = owner.get(address, f"(none for {address})")
        piece = (sg.GROUPS, sg.instance_map(address), f"{address} : {chain}")
        have.setdefault(holder, set()).add(piece)
    names = desired.labels()
    if not have:
        # Nothing on the host (a first apply): every port is added whole, its elements
        # written once, in the order the batch takes them (no sets to compare).
        return [
            AddPortFilter(
                port.name,
                port.instance,
                port.address,
                (),
                _port_pieces(port),
                port.mac,
                tuple(names.get(g, str(g)) for g in port.groups),
            )
            for port in sorted(desired.ports, key=_port_name)
        ]
    wanted = {p.name: set(_port_pieces(p)) for p in desired.ports}
    ports = {p.name: p for p in desired.ports}
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


def _port_name(port: FilteredPort) -> str:
    return port.name


def _port_pieces(port: FilteredPort) -> tuple[Piece, ...]:
    """Every element a port has in the two tables: itself, its MAC and addresses (the
    ``port_ip6`` ones: its link-local address and, on a dual-stack network, its global
    one), and its addresses' keys in the instance maps, which the groups judge (the bridge
    table's first, as the batch has always taken them)."""
    name, chain = port.name, sg.combination_chain(port.groups)
    elements6 = spoof6.port_elements(port)
    return (
        (sg.BRIDGE, "ports", name),
        (sg.BRIDGE, "port_mac", f"{name} . {port.mac}"),
        (sg.BRIDGE, "port_ip", f"{name} . {port.address}"),
        *((sg.BRIDGE, spoof6.SET, text) for text in elements6),
        (sg.GROUPS, sg.INSTANCE_MAP, f"{port.address} : {chain}"),
        *(
            (sg.GROUPS, sg.INSTANCE_MAP6, f"{text.partition(' . ')[2]} : {chain}")
            for text in elements6
        ),
    )
