"""The filter compared at the keys a change names, never listed whole.

A change to security groups names what it touched (core.linux.scope.Scope): the groups
whose rules or members changed, and the instance ports, as (MAC, fixed address), that
came, went or changed groups. Then the database is asked for those rows alone
(core/desired/secgroups_keyed.py) and the kernel for the elements, chains and sets under
those keys (over nfnetlink, as core/linux/nftelements.py does for NAT), so a change costs the same
on a host of 100 ports as on one of 10,000. What nothing names (another port's
elements, a group no port here is in) is left as it is; the full comparison (`host
apply`, the agent's re-sync) sees everything.

A chain that may go (a combination of groups no port has any more, a group's chain no
combination jumps to) goes when the kernel's own count of what jumps to it says that the
jumps this change removes were the last.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from core import secrules
from core.linux import nftelements, spoof6, sysctl
from core.linux.nftelements import Lookup
from core.linux.secgroups import tables as sg
from core.linux.secgroups.spec import DesiredFilter
from core.linux.secgroups.state import FilterState, TableState, read_sets

_COMBINATION = re.compile(r"in-(\d+(?:-\d+)*)\Z")


@dataclass(frozen=True)
class KeyedFilter(DesiredFilter):
    """The part of the desired filter a change names (ports, groups, sources hold only
    what is wanted at those keys), and the keys themselves."""

    # Every named port, wanted here or not: (port name, MAC, fixed address).
    named_ports: tuple[tuple[str, str, str], ...] = ()
    # The groups named, and those of the named ports: compared whole when wanted.
    named_groups: tuple[int, ...] = ()
    # Source groups whose member sets are compared at the named ports' addresses only
    # (the others in ``sources`` are wanted whole: made if missing).
    keyed_sources: frozenset[int] = frozenset()
    # Member sets of named groups that no rule here names any more.
    unneeded_sources: frozenset[int] = frozenset()
    # Sources wanted whole whose members were not read (they are in ``sources`` with
    # none): other instances here need them too, so their sets are there already.
    unread_sources: frozenset[int] = frozenset()
    # The global IPv6 addresses of the named ports: those the database holds, and those
    # a terminated port had (worked out from its MAC and its fixed address's network),
    # whose elements go.
    named_v6: tuple[str, ...] = ()
    # Named ports that are gone, with the global IPv6 address they had: (port name, MAC,
    # IPv6 address).
    gone_v6: tuple[tuple[str, str, str], ...] = ()

    @property
    def keyed(self) -> bool:
        return True


# -- what the kernel has at those keys --------------------------------------------------------


@dataclass(frozen=True)
class KeyedState(FilterState):
    """The two tables as far as the named keys go, in the shape of a full observation:
    a set holds only the looked-up elements it has, ``chains`` only the chains looked
    up (a chain that may go is there only when nothing else jumps to it)."""


def observe_keyed(
    lookup: Lookup,
    binary: str,
    netns: str | None,
    desired: KeyedFilter,
    open_ports: dict[str, frozenset[str]],
) -> KeyedState | None:
    """The tables at the keys ``desired`` names; None when a table or one of its fixed
    sets is missing or shaped otherwise (the full comparison makes or mends it).

    ``open_ports``: the open sets' elements the closed-ports plan compares, by set."""
    bridge_family, groups_family = nftelements.NFPROTO_BRIDGE, nftelements.NFPROTO_INET
    bridge_table, groups_table = sg.BRIDGE[1], sg.GROUPS[1]
    fixed_bridge = lookup.sets_present(bridge_table, sg.FIXED_SETS[sg.BRIDGE], bridge_family)
    fixed_groups = lookup.sets_present(
        groups_table, [*sg.FIXED_SETS[sg.GROUPS], *sg.INSTANCE_MAPS], groups_family
    )
    if not all(fixed_bridge.values()) or not all(fixed_groups.values()):
        return None
    bridge_sets: dict[str, set[str]] = {name: set() for name in sg.FIXED_SETS[sg.BRIDGE]}
    expiring: dict[str, set[str]] = {name: set() for name in sg.TIMED_SETS[sg.BRIDGE]}
    groups_sets: dict[str, set[str]] = {"dhcp_servers": set()}

    def present(
        table: str, family: int | None, name: str, keyed: list[tuple[str, bytes]]
    ) -> list[tuple[str, nftelements.Element]]:
        found = lookup.get(table, name, [key for _, key in keyed], family)
        return [(text, e) for (text, _), e in zip(keyed, found, strict=True) if e is not None]

    ports = desired.named_ports
    ifkey, ipkey = nftelements.ifname_key, nftelements.ipv4_key
    for text, _ in present(
        bridge_table, bridge_family, "ports", [(name, ifkey(name)) for name, _, _ in ports]
    ):
        bridge_sets["ports"].add(text)
    macs = [
        (f"{name} . {mac}", nftelements.concat_key(ifkey(name), nftelements.mac_key(mac)))
        for name, mac, _ in ports
    ]
    for text, _ in present(bridge_table, bridge_family, "port_mac", macs):
        bridge_sets["port_mac"].add(text)
    ips = [
        (f"{name} . {address}", nftelements.concat_key(ifkey(name), ipkey(address)))
        for name, _, address in ports
    ]
    for text, _ in present(bridge_table, bridge_family, "port_ip", ips):
        bridge_sets["port_ip"].add(text)
    # A port's IPv6 sources: its link-local address (from its MAC) and its global one,
    # wanted or, for a terminated port, to go.
    v6_texts = (
        {text for name, mac, _ in ports for text in spoof6.port_elements_of(name, mac, None)}
        | {text for p in desired.ports for text in spoof6.port_elements(p)}
        | {
            text
            for name, mac, address in desired.gone_v6
            for text in spoof6.port_elements_of(name, mac, address)
        }
    )
    v6 = []
    for text in sorted(v6_texts):
        name, _, address = text.partition(" . ")
        v6.append((text, nftelements.concat_key(ifkey(name), nftelements.ipv6_key(address))))
    for text, _ in present(bridge_table, bridge_family, spoof6.SET, v6):
        bridge_sets[spoof6.SET].add(text)
    servers = [(a, ipkey(a)) for a in desired.dhcp_servers]
    for text, _ in present(bridge_table, bridge_family, "dhcp_servers", servers):
        bridge_sets["dhcp_servers"].add(text)
    for text, _ in present(groups_table, groups_family, "dhcp_servers", servers):
        groups_sets["dhcp_servers"].add(text)
    for name, keys in open_ports.items():
        for text, element in present(
            bridge_table, bridge_family, name, [(k, ifkey(k)) for k in sorted(keys)]
        ):
            bridge_sets[name].add(text)
            if element.timeout and name in expiring:
                expiring[name].add(text)
    targets: dict[str, str] = {}
    for address, element in present(
        groups_table, groups_family, sg.INSTANCE_MAP, [(a, ipkey(a)) for _, _, a in ports]
    ):
        targets[address] = element.chain or ""
    targets.update(_targets_v6(present, groups_table, groups_family, v6_texts))

    # Chains: the combinations the named ports want or leave, the named groups'.
    wanted_combinations = {sg.combination_chain(p.groups) for p in desired.ports}
    left = set(targets.values()) - wanted_combinations
    group_chains = [sg.group_chain(g) for g in desired.named_groups]
    names = sorted(wanted_combinations | left | set(group_chains))
    uses = lookup.chain_uses(groups_table, names, groups_family)
    rules = lookup.rules(groups_table, [n for n in names if uses[n] is not None], groups_family)
    chains: dict[str, tuple[tuple[str, int], ...]] = {}
    for name in wanted_combinations:
        if uses[name] is not None:
            chains[name] = rules[name]
    wanted_addresses = {p.address: sg.combination_chain(p.groups) for p in desired.ports}
    wanted_addresses.update(
        (text.partition(" . ")[2], sg.combination_chain(p.groups))
        for p in desired.ports
        for text in spoof6.port_elements(p)
    )
    gone: dict[str, int] = {}  # combination -> map elements this change takes from it
    for address, chain in targets.items():
        if wanted_addresses.get(address) != chain:
            gone[chain] = gone.get(chain, 0) + 1
    dropped: dict[int, int] = {}  # group -> combinations that jump to it and go
    for name in sorted(left):
        use = uses.get(name)
        if use is None:
            continue
        jumps = use - len(rules[name])
        if jumps - gone.get(name, 0) <= 0:
            chains[name] = rules[name]
            match = _COMBINATION.match(name)
            if match is None:
                continue  # a hashed name: its groups are not known, so theirs stay
            for g in {int(part) for part in match.group(1).split("-")}:
                dropped[g] = dropped.get(g, 0) + 1
    used = {g.id for g in desired.groups}
    types: dict[str, sg.SetSpec] = {name: sg.FIXED_SETS[sg.GROUPS][name] for name in groups_sets}
    types.update((name, ((kind,), False)) for name, kind in sg.INSTANCE_MAPS.items())
    group_sets: list[str] = []
    for group_id in desired.named_groups:
        chain = sg.group_chain(group_id)
        use = uses.get(chain)
        names_here = [sg.group_set(group_id, kind) for kind in sg.GROUP_SETS]
        if group_id in used:
            if use is not None:
                chains[chain] = rules[chain]
            group_sets += names_here
            continue
        # No port here is in it: it goes once no combination left jumps to it.
        if use is not None and use - len(rules[chain]) - dropped.get(group_id, 0) > 0:
            continue
        if use is not None:
            chains[chain] = rules[chain]
        for name, made in lookup.sets_present(groups_table, names_here, groups_family).items():
            if made:
                types[name] = sg.spec_of(sg.GROUPS, name)
    sets_found: dict[str, frozenset[str]] = {}
    if group_sets:
        found = lookup.sets_present(groups_table, group_sets, groups_family)
        listed = [name for name in group_sets if found[name]]
        for name in listed:
            types[name] = sg.spec_of(sg.GROUPS, name)
        sets_found.update(_list_sets(binary, netns, listed))
    # Member sets: compared at the named addresses (keyed sources), made whole if missing
    # (sources a compared group's rules name), or taken away (no rule here names them).
    families = ((secrules.IPV4, sg.MEMBER_SET), (secrules.IPV6, sg.MEMBER_SET6))
    member_names = {sg.member_set(s.id, f) for s in desired.sources for f, _ in families} | {
        sg.member_set(g, f) for g in desired.unneeded_sources for f, _ in families
    }
    there = lookup.sets_present(groups_table, sorted(member_names), groups_family)
    # The named ports' addresses of each family, as member sets are keyed.
    asked_by = {
        secrules.IPV4: [(a, ipkey(a)) for _, _, a in ports],
        secrules.IPV6: [(a, nftelements.ipv6_key(a)) for a in desired.named_v6],
    }
    for source in desired.sources:
        for family, spec in families:
            name = sg.member_set(source.id, family)
            if not there[name]:
                if source.id in desired.keyed_sources or source.id in desired.unread_sources:
                    return None  # wanted whole but read only at these keys, or not at all
                continue
            types[name] = spec
            if source.id in desired.keyed_sources:
                sets_found[name] = frozenset(
                    text for text, _ in present(groups_table, groups_family, name, asked_by[family])
                )
            else:
                # Wanted whole and there: taken as it is (its members change by their keys).
                members = source.members_v6 if family == secrules.IPV6 else source.members
                sets_found[name] = frozenset(a for a, _ in members)
    for group_id in desired.unneeded_sources:
        for family, spec in families:
            name = sg.member_set(group_id, family)
            if there.get(name):
                types[name] = spec
                sets_found[name] = frozenset()
    bridge = TableState(
        exists=True,
        sets={k: frozenset(v) for k, v in bridge_sets.items()},
        types=dict(sg.FIXED_SETS[sg.BRIDGE]),
        timed=sg.TIMED_SETS[sg.BRIDGE],
        expiring={k: frozenset(v) for k, v in expiring.items()},
    )
    groups = TableState(
        exists=True,
        sets={**{k: frozenset(v) for k, v in groups_sets.items()}, **sets_found},
        targets=targets,
        chains=chains,
        types=types,
    )
    return KeyedState(
        bridge,
        groups,
        sysctl.read_bridge_netfilter(netns),
    )


# What a set holds at some keys: (table, family, set, [(text, key)]) -> those found.
Present = Callable[
    [str, int | None, str, list[tuple[str, bytes]]], list[tuple[str, nftelements.Element]]
]


def _targets_v6(present: Present, table: str, family: int, v6_texts: set[str]) -> dict[str, str]:
    """The IPv6 instance map at the named ports' IPv6 addresses: address -> chain."""
    addresses = sorted({text.partition(" . ")[2] for text in v6_texts})
    keyed = [(a, nftelements.ipv6_key(a)) for a in addresses]
    return {a: e.chain or "" for a, e in present(table, family, sg.INSTANCE_MAP6, keyed)}


def _list_sets(binary: str, netns: str | None, names: list[str]) -> dict[str, frozenset[str]]:
    """The elements of a few named sets of the groups table (a group's rules: tens of
    elements), each listed alone."""
    if not names:
        return {}
    states = read_sets(binary, netns, sg.GROUPS, names)
    return {
        name: state.sets.get(name, frozenset()) for name, state in zip(names, states, strict=True)
    }
