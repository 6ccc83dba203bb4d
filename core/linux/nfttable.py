"""A small nftables table of netcon's own, written whole from its layout and changed by
element: the metadata DNAT tables (one per family), the multi-host segment filter and
the host input filter. The last two hold one set of interface names, read and planned
here (``read_names``, ``plan_names``).

Such a table is made in one batch (its sets, chains and rules, from ``NftTable``),
then only its elements change. A host that never had it is not asked for it: a marker
file in the state directory is there while the table is. It is observed in one listing,
which also says whether the table still has the layout netcon writes (else the plan
makes it again, whole).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.errors import HostError
from core.linux import namespace, nft


@dataclass(frozen=True)
class Chain:
    name: str
    # What follows the chain's name in `add chain`: its type, hook, priority, policy.
    spec: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class NftTable:
    family: str
    name: str
    # Where its marker is, below the namespace's state directory.
    marker_name: str
    # (keyword, name, type): `set` or `map`, and what follows `type` in its spec.
    sets: tuple[tuple[str, str, str], ...]
    chains: tuple[Chain, ...]

    @property
    def qualified(self) -> str:
        return f"{self.family} {self.name}"

    def marker(self, state_dir: Path) -> Path:
        return state_dir / self.marker_name

    def create(self, replace: bool) -> list[str]:
        """The commands that make the table whole (after deleting it, ``replace``)."""
        table = self.qualified
        lines = [f"delete table {table}"] if replace else []
        lines.append(f"add table {table}")
        lines += [f"add {kind} {table} {name} {{ type {of}; }}" for kind, name, of in self.sets]
        for chain in self.chains:
            lines.append(f"add chain {table} {chain.name} {{ {chain.spec} }}")
            lines += [f"add rule {table} {chain.name} {rule}" for rule in chain.rules]
        return lines

    def delete(self) -> list[str]:
        return [f"delete table {self.qualified}"]

    def element(self, add: bool, set_name: str, element: str) -> str:
        verb = "add" if add else "delete"
        return f"{verb} element {self.qualified} {set_name} {{ {element} }}"

    def record(self, state_dir: Path, *, present: bool) -> None:
        """The marker follows the table, once nft has made or deleted it."""
        if present:
            self.marker(state_dir).parent.mkdir(parents=True, exist_ok=True)
            self.marker(state_dir).touch()
        else:
            self.marker(state_dir).unlink(missing_ok=True)


@dataclass(frozen=True)
class Listing:
    """What one listing of the table found: its sets' and maps' elements (as nft's
    JSON gives them) and whether its layout is the one netcon writes."""

    present: bool = False
    layout_ok: bool = False
    elements: dict[str, list[Any]] = field(default_factory=dict)
    # It could not be read (no CAP_NET_ADMIN): the plan leaves it alone.
    unread: bool = False


def read(
    table: NftTable,
    nft_binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    wanted: bool,
    may_change: bool = True,
) -> Listing:
    """The table as the kernel has it; not asked for when it is not wanted and the
    marker says netcon never made it."""
    if not wanted and not table.marker(state_dir).exists():
        return Listing()
    (result,) = nft.listings(nft_binary, netns, [f"list table {table.qualified}"], numeric=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return Listing()
        if not may_change:
            # `host plan` without CAP_NET_ADMIN: the table is not known, so not planned.
            return Listing(unread=True)
        raise HostError(f"nft: cannot read table {table.qualified}: {result.stderr.strip()}")
    try:
        objects = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError):
        raise HostError(f"nft: unreadable listing of table {table.qualified}") from None
    return parse(table, objects)


def parse(table: NftTable, objects: list[dict[str, Any]]) -> Listing:
    elements: dict[str, list[Any]] = {}
    rules: dict[str, int] = {}
    for obj in objects:
        kind = "map" if "map" in obj else "set" if "set" in obj else None
        if kind is not None:
            elements[obj[kind]["name"]] = list(obj[kind].get("elem", []))
        elif "chain" in obj:
            rules.setdefault(obj["chain"]["name"], 0)
        elif "rule" in obj:
            chain = obj["rule"]["chain"]
            rules[chain] = rules.get(chain, 0) + 1
    layout_ok = set(elements) == {name for _, name, _ in table.sets} and rules == {
        chain.name: len(chain.rules) for chain in table.chains
    }
    return Listing(True, layout_ok, elements)


class TableChange(Protocol):
    """An operation on such a table: its nft commands, and what it leaves of the table
    (True: made, False: deleted, None: as it was) for the table's marker."""

    @property
    def table(self) -> NftTable: ...

    @property
    def table_present(self) -> bool | None: ...

    def commands(self) -> list[str]: ...


def script(changes: Sequence[TableChange]) -> str:
    return "".join(line + "\n" for change in changes for line in change.commands())


def apply(
    changes: Sequence[TableChange], nft_binary: str, netns: str | None, state_dir: Path, what: str
) -> None:
    """The changes as one atomic nft batch (``what`` names it in an error), then the
    markers of the tables they made or deleted."""
    text = script(changes)
    if not text:
        return
    result = namespace.run(netns, [nft_binary, "-f", "-"], stdin=text)
    if result.returncode != 0:
        found = [line for line in result.stderr.splitlines() if line.strip()]
        raise HostError(f"nft: {what}: {found[0] if found else 'failed'}")
    for change in changes:
        if change.table_present is not None:
            change.table.record(state_dir, present=change.table_present)


@dataclass(frozen=True)
class ObservedNames:
    """A table whose one set holds interface names, as read."""

    table: bool = False
    layout_ok: bool = False
    names: frozenset[str] = frozenset()
    unread: bool = False


def read_names(
    table: NftTable,
    set_name: str,
    nft_binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    wanted: bool,
    may_change: bool = True,
) -> ObservedNames:
    found = read(table, nft_binary, netns, state_dir, wanted=wanted, may_change=may_change)
    names = frozenset(str(e) for e in found.elements.get(set_name, []))
    return ObservedNames(found.present, found.layout_ok, names, found.unread)


Op = TypeVar("Op")


def plan_names(
    wanted: frozenset[str],
    have: ObservedNames,
    *,
    nft_found: bool,
    create: Callable[[bool], Op],
    delete: Callable[[], Op],
    member: Callable[[str, bool], Op],
    held: frozenset[str] = frozenset(),
    scoped: bool = False,
) -> list[Op]:
    """What makes the set hold ``wanted``: ``create(replace)`` makes the table (again),
    ``delete()`` takes it away, ``member(name, add)`` changes one element. A ``held``
    name's element stays as it is; a ``scoped`` plan adds what its networks need and
    removes nothing (it does not see the other networks)."""
    if not nft_found or have.unread:
        return []
    present = have.names if have.table and have.layout_ok else frozenset()
    kept = present & held
    if not wanted and not kept:
        return [delete()] if have.table and not scoped else []
    ops: list[Op] = []
    if not have.table or not have.layout_ok:
        ops.append(create(have.table))
        # A table made again loses its elements: a held name's comes back.
        wanted |= have.names & held
    if not scoped:
        ops += [member(name, False) for name in sorted(present - wanted - held)]
    ops += [member(name, True) for name in sorted(wanted - present)]
    return ops
