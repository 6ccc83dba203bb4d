"""The filter's first apply: neither table is in the kernel, so the whole of both is
written in one pass from the desired filter, as nft text (each table a block of its sets
and maps with their elements inline, then its chains with their rules), with nothing to
compare and no operation per port.

The kernel ends up holding exactly what the element-by-element plan makes from empty
tables: the same sets and chains made in the same order, the same rules, the same
elements.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import secrules
from core.linux import nfttext, spoof6
from core.linux.nftblocks import as_blocks
from core.linux.secgroups import tables as sg
from core.linux.secgroups.observe import marker
from core.linux.secgroups.operations import FilterOperation, Staged
from core.linux.secgroups.rules import rule_elements
from core.linux.secgroups.spec import DesiredFilter

if TYPE_CHECKING:
    from core.linux.execution import Execution


@dataclass(frozen=True)
class CreateWholeFilter(FilterOperation):
    desired: DesiredFilter

    def describe(self) -> str:
        desired = self.desired
        rules = sum(len(g.rules) for g in desired.groups)
        return (
            f"make the security-group filter: {len(desired.ports)} ports, "
            f"{len(desired.groups)} groups, {rules} rules"
        )

    def commands(self) -> list[tuple[int, Staged]]:
        return [(0, nfttext.verbatim(text(self.desired)))]

    def execute(self, run: Execution) -> None:
        super().execute(run)
        # Before the batch: the marker says netcon made (or is making) its tables here.
        state_dir = run.nat_marker.parent
        state_dir.mkdir(parents=True, exist_ok=True)
        marker(state_dir).touch()


def text(desired: DesiredFilter) -> str:
    """Both tables, whole, as one nft text: written a command a line, said in blocks
    (nftblocks.py), which nft reads faster."""
    names: list[str] = []
    macs: list[str] = []
    addresses: list[str] = []
    addresses6: list[str] = []
    targets: list[str] = []
    targets6: list[str] = []
    chains: dict[tuple[int, ...], str] = {}
    for port in sorted(desired.ports, key=_name):
        quoted = f'"{port.name}"'
        chain = chains.get(port.groups)
        if chain is None:
            chain = chains[port.groups] = sg.combination_chain(port.groups)
        names.append(quoted)
        macs.append(f"{quoted} . {port.mac}")
        addresses.append(f"{quoted} . {port.address}")
        targets.append(f"{port.address} : goto {chain}")
        for address6 in spoof6.port_addresses(port.mac, port.address_v6):
            addresses6.append(f"{quoted} . {address6}")
            targets6.append(f"{address6} : goto {chain}")
    servers = list(dict.fromkeys(desired.dhcp_servers))
    lines = _table(
        sg.BRIDGE,
        {
            "ports": names,
            "port_mac": macs,
            "port_ip": addresses,
            spoof6.SET: addresses6,
            "dhcp_servers": servers,
        },
    )
    lines += _table(sg.GROUPS, {"dhcp_servers": servers})
    labels = desired.labels()
    chain_rules: list[str] = []
    for group in desired.groups:
        elements, group_lines = rule_elements(group, labels)
        for kind, spec in sg.GROUP_SETS.items():
            lines.append(_set(sg.group_set(group.id, kind), spec, list(elements[kind])))
        lines += _group_head(group.id)
        # After the member sets they may name are made, as the element-by-element plan does.
        chain_rules += [
            nfttext.command(command)
            for line in group_lines.values()
            for _, command in line.commands()
            if isinstance(command, dict)
        ]
    for source in desired.sources:
        for name, members in (
            (sg.member_set(source.id), source.members),
            (sg.member_set(source.id, secrules.IPV6), source.members_v6),
        ):
            spec = sg.spec_of(sg.GROUPS, name)
            lines.append(_set(name, spec, [address for address, _ in members]))
    lines += chain_rules
    for chain, group_ids in sorted((chain, groups) for groups, chain in chains.items()):
        lines += _combination(chain, group_ids)
    for name, found in ((sg.INSTANCE_MAP, targets), (sg.INSTANCE_MAP6, targets6)):
        if found:
            lines.append(f"add element {_where(sg.GROUPS)} {name} {{ {', '.join(found)} }}")
    return as_blocks(lines)


_name = operator.attrgetter("name")


def _where(table: sg.Table) -> str:
    return f"{table[0]} {table[1]}"


def _set(name: str, spec: sg.SetSpec, elements: list[str]) -> str:
    before, after = _set_head(spec)
    return _with_elements(f"{before}{name}{after}", elements)


@functools.lru_cache(maxsize=16)
def _set_head(spec: sg.SetSpec) -> tuple[str, str]:
    """A set of the groups table of this type, said around its name (a few types for
    hundreds of sets)."""
    placeholder = "NAME"
    text = nfttext.command(sg.add_set(sg.GROUPS, placeholder, spec))
    before, _, after = text.partition(f" {placeholder} ")
    return f"{before} ", f" {after}"


def _with_elements(head: str, elements: list[str]) -> str:
    """``add set ... { type ...; }`` with its elements inside."""
    if not elements:
        return head
    return f"{head[:-1]}elements = {{ {', '.join(elements)} }}; }}"


def _table(table: sg.Table, elements: dict[str, list[str]]) -> list[str]:
    """The fixed part of ``table`` with the elements of its fixed sets inline."""
    lines = list(_fixed(table))
    for index, (name, _) in enumerate(sg.FIXED_SETS[table].items(), start=1):
        found = elements.get(name)
        if found:
            lines[index] = _with_elements(lines[index], found)
    return lines


@functools.lru_cache(maxsize=4)
def _fixed(table: sg.Table) -> tuple[str, ...]:
    """The table's own sets and chains (a table command, then its sets in order)."""
    return tuple(nfttext.command(c) for c in sg.create_table(table, replace=False))


def _group_head(group_id: int) -> list[str]:
    """A group's chain and the set lookups at its top: the same for every group but for
    its id, so written out once (hundreds of groups, a handful of rules each)."""
    number = str(group_id)
    return [line.replace(_SOME_GROUP, number) for line in _group_head_text()]


# A group id and a chain name that stand for a group's and a combination chain's own in
# the texts written once (nothing else in those texts has these digits).
_SOME_GROUP = "987654321"
_SOME_CHAIN = "in-987654320"


@functools.cache
def _group_head_text() -> tuple[str, ...]:
    group_id = int(_SOME_GROUP)
    chain = sg.group_chain(group_id)
    return (nfttext.command(sg.add_chain(sg.GROUPS, chain)),) + tuple(
        nfttext.command(sg.add_rule(sg.GROUPS, chain, comment, expr))
        for comment, expr in sg.group_head(group_id)
    )


def _combination(chain: str, groups: tuple[int, ...]) -> list[str]:
    """The chain of the ports in exactly ``groups``: admitted first, then a jump to each
    group's chain, then the drop; written from one text of each line."""
    made, first, each, last = _combination_text()
    return [
        made.replace(_SOME_CHAIN, chain),
        *(line.replace(_SOME_CHAIN, chain) for line in first),
        *(each.replace(_SOME_GROUP, str(group)).replace(_SOME_CHAIN, chain) for group in groups),
        *(line.replace(_SOME_CHAIN, chain) for line in last),
    ]


@functools.cache
def _combination_text() -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    """The chain's line, the rules before the groups' jumps, one jump, the rules after."""
    lines = [
        nfttext.command(sg.add_rule(sg.GROUPS, _SOME_CHAIN, comment, expr))
        for comment, expr in sg.combination_rules((int(_SOME_GROUP),))
    ]
    (at,) = [index for index, line in enumerate(lines) if _SOME_GROUP in line]
    return (
        nfttext.command(sg.add_chain(sg.GROUPS, _SOME_CHAIN)),
        tuple(lines[:at]),
        lines[at],
        tuple(lines[at + 1 :]),
    )
