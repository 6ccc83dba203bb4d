"""What the two security-group tables hold, as netcon reads them back from nft's JSON
listing: per table its sets' elements as text (tables.py), the instance maps' targets, the
chains' rules by comment and handle, and whether the fixed layout is this netcon's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import HostError
from core.linux import nft
from core.linux.secgroups.tables import (
    FIXED_CHAINS,
    FIXED_SETS,
    GROUPS,
    INSTANCE_MAPS,
    TIMED_SETS,
    SetSpec,
    Table,
    element_text,
)


@dataclass(frozen=True)
class TableState:
    exists: bool = False
    sets: dict[str, frozenset[str]] = field(default_factory=dict)
    # The instance maps (both families): address -> the chain it jumps to.
    targets: dict[str, str] = field(default_factory=dict)
    # Chain -> its rules' (comment, handle), in order.
    chains: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    hooks: dict[str, tuple[str, str, int] | None] = field(default_factory=dict)
    types: dict[str, SetSpec] = field(default_factory=dict)
    # The sets made with the timeout flag, and the elements that carry a timeout.
    timed: frozenset[str] = frozenset()
    expiring: dict[str, frozenset[str]] = field(default_factory=dict)

    def layout_ok(self, table: Table) -> bool:
        """Whether the fixed part is exactly what this netcon builds."""
        if not self.exists:
            return False
        for name, spec in FIXED_SETS[table].items():
            if self.types.get(name) != spec:
                return False
        if not TIMED_SETS.get(table, frozenset()) <= self.timed:
            return False
        if table == GROUPS and any(
            self.types.get(name) != ((kind,), False) for name, kind in INSTANCE_MAPS.items()
        ):
            return False
        for name, (hook, rules) in FIXED_CHAINS[table].items():
            if self.hooks.get(name, "missing") != hook:
                return False
            if [c for c, _ in self.chains.get(name, ())] != [c for c, _ in rules]:
                return False
        return True


@dataclass(frozen=True)
class FilterState:
    bridge: TableState
    groups: TableState
    # net.bridge.bridge-nf-call-iptables: None when br_netfilter is not in the kernel.
    bridge_netfilter: bool | None = True
    # False without CAP_NET_ADMIN: the tables could not be read, so nothing is planned.
    readable: bool = True
    # Whether the IPv4-only groups table of earlier netcon is still there.
    old_groups: bool = False


def read_tables(binary: str, netns: str | None, tables: Sequence[Table]) -> list[TableState]:
    commands = [f"list table {family} {name}" for family, name in tables]
    results = nft.listings(binary, netns, commands)
    return [parsed_listing(table, result) for table, result in zip(tables, results, strict=True)]


def read_set(binary: str, netns: str | None, table: Table, name: str) -> TableState:
    """One set of ``table`` and its elements, listed alone (the rest of the table is not
    read); an empty state when the table or the set is missing."""
    (state,) = read_sets(binary, netns, table, [name])
    return state


def read_sets(
    binary: str, netns: str | None, table: Table, names: Sequence[str]
) -> list[TableState]:
    """A few sets of ``table``, each listed alone, in one call."""
    family, table_name = table
    commands = [f"list set {family} {table_name} {name}" for name in names]
    return [parsed_listing(table, result) for result in nft.listings(binary, netns, commands)]


def read_table(binary: str, netns: str | None, table: Table) -> TableState:
    (state,) = read_tables(binary, netns, [table])
    return state


def parsed_listing(table: Table, result: subprocess.CompletedProcess[str]) -> TableState:
    family, name = table
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return TableState()
        message = next((s.strip() for s in result.stderr.splitlines() if s.strip()), "failed")
        raise HostError(f"nft: cannot read table {family} {name}: {message}")
    try:
        objects = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError):
        raise HostError(f"nft: unreadable listing of table {family} {name}") from None
    return parse_table(objects)


def parse_table(objects: list[dict[str, Any]]) -> TableState:
    sets: dict[str, frozenset[str]] = {}
    types: dict[str, SetSpec] = {}
    targets: dict[str, str] = {}
    chains: dict[str, list[tuple[str, int]]] = {}
    hooks: dict[str, tuple[str, str, int] | None] = {}
    timed: set[str] = set()
    expiring: dict[str, frozenset[str]] = {}
    for obj in objects:
        if "set" in obj or "map" in obj:
            item = obj.get("set") or obj["map"]
            kind = item["type"]
            spec: SetSpec = (
                tuple(kind) if isinstance(kind, list) else (kind,),
                "interval" in item.get("flags", []),
            )
            types[item["name"]] = spec
            if "timeout" in item.get("flags", []):
                timed.add(item["name"])
                expiring[item["name"]] = frozenset(
                    element_text(e, spec)
                    for e in item.get("elem", [])
                    if isinstance(e, dict) and "timeout" in e.get("elem", {})
                )
            if "map" in obj:
                for key, verdict in item.get("elem", []):
                    jumps: list[dict[str, Any]] = list(verdict.values())
                    targets[str(key)] = str(jumps[0].get("target", "")) if jumps else ""
            else:
                sets[item["name"]] = frozenset(element_text(e, spec) for e in item.get("elem", []))
        elif "chain" in obj:
            chain = obj["chain"]
            chains.setdefault(chain["name"], [])
            hook = None
            if "hook" in chain:
                hook = (chain.get("type", ""), chain["hook"], int(chain.get("prio", 0)))
            hooks[chain["name"]] = hook
        elif "rule" in obj:
            rule = obj["rule"]
            chains.setdefault(rule["chain"], []).append((rule.get("comment", ""), rule["handle"]))
    return TableState(
        exists=True,
        sets=sets,
        targets=targets,
        chains={k: tuple(v) for k, v in chains.items()},
        hooks=hooks,
        types=types,
        timed=frozenset(timed),
        expiring=expiring,
    )
