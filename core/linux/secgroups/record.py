"""The record that lets a no-change apply skip listing the security-group tables.

Listing the two filter tables costs nft one netlink round trip per set (hundreds), on
every apply, although nothing changed. nftables keeps a ruleset generation id that any
change of any table in the namespace, by anyone, moves on. After an apply that left the
filter as its plan wanted, the host records that id with a digest of everything the
filter's plan was made from. When the next apply finds the same id in the kernel and
computes the same digest, the tables are what that plan left: their plan is empty, and
nothing is listed. A different id (a hand-made `nft delete element`, a heartbeat's
renewal, any apply) or digest, and the tables are listed and compared as always.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from core.linux.secgroups.spec import (
    DesiredFilter,
    FilteredGroup,
    FilteredPort,
    GroupRule,
    SourceGroup,
)
from core.linux.secgroups.state import FilterState

FILE = "filter-record"
# The code that makes the filter: another version of it may want other tables.
_MAKERS = (
    "secgroups/tables.py",
    "secgroups/state.py",
    "secgroups/operations.py",
    "secgroups/plan.py",
    "secgroups/render.py",
    "secgroups/spec.py",
    "closedports.py",
    "spoof6.py",
)


@dataclass(frozen=True)
class Record:
    generation: int
    digest: str


@dataclass(frozen=True)
class VouchedState(FilterState):
    """The tables, not listed: the kernel's ruleset is still the one recorded after an
    apply that left them as ``digest`` wanted. ``listing`` lists them, for a plan whose
    digest differs."""

    digest: str = ""
    listing: Callable[[], FilterState | None] = field(
        default=lambda: None, compare=False, repr=False
    )


def read(state_dir: Path) -> Record | None:
    try:
        data = json.loads((state_dir / FILE).read_text())
        return Record(int(data["generation"]), str(data["digest"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(state_dir: Path, record: Record) -> None:
    """Written whole or not at all: a torn record must not vouch for anything."""
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / f".{FILE}.{os.getpid()}"
    temporary.write_text(json.dumps({"generation": record.generation, "digest": record.digest}))
    temporary.replace(state_dir / FILE)


def forget(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / FILE).unlink()


def digest(*inputs: object) -> str:
    """A digest of the plan's inputs that is the same in every process (a frozenset's
    order is not: string hashes are salted per process), and of the code that plans."""
    text = json.dumps([_canonical(item) for item in inputs], separators=(",", ":"))
    return hashlib.sha256((_makers() + text).encode()).hexdigest()


# Exactly these types are written as they are; the test below them is the slow way.
_PLAIN = frozenset((str, int, bool, float, type(None)))


def _canonical(item: Any) -> Any:
    kind = type(item)
    if kind in _PLAIN:
        return item  # most of the inputs: names, addresses, ports
    if kind is DesiredFilter:
        return _filter_values(item)
    names = _field_names(kind)
    if names is not None:
        return [kind.__name__, {name: _canonical(getattr(item, name)) for name in names}]
    if isinstance(item, (set, frozenset)):
        if all(isinstance(x, str) for x in item):
            return sorted(item)  # the usual case (port names), and much the cheapest
        return sorted((_canonical(x) for x in item), key=lambda x: json.dumps(x))
    if isinstance(item, (list, tuple)):
        return [_canonical(x) for x in item]
    if isinstance(item, dict):
        return sorted(
            ([_canonical(k), _canonical(v)] for k, v in item.items()),
            key=lambda x: json.dumps(x),
        )
    if item is None or isinstance(item, (bool, int, float, str)):
        return item
    return repr(item)


def _filter_values(item: DesiredFilter) -> list[Any]:
    """The desired filter as lists of its field values: tuples of frozen dataclasses of
    strings, numbers and None all the way down, so each one's values (every field, read
    in one call) are already the same in every process, at a fraction of the cost of
    the walk below, or of its repr, over thousands of ports. A group's rules are the only
    dataclasses inside another: json.dumps refuses any other a new field brings, and a
    new field of the filter itself has no entry here."""
    port, group, rule, source = (
        _values(kind) for kind in (FilteredPort, FilteredGroup, GroupRule, SourceGroup)
    )

    def groups(found: tuple[FilteredGroup, ...]) -> list[Any]:
        return [[list(map(rule, v)) if v is g.rules else v for v in group(g)] for g in found]

    parts: dict[str, Callable[[Any], Any]] = {
        "ports": lambda found: list(map(port, found)),
        "groups": groups,
        "sources": lambda found: list(map(source, found)),
        "dhcp_servers": list,
    }
    return [parts[name](getattr(item, name)) for name in _field_names(DesiredFilter) or ()]


@functools.cache
def _values(kind: type) -> Callable[[Any], tuple[Any, ...]]:
    """The values of every field of a dataclass ``kind``, as one tuple."""
    getter = operator.attrgetter(*(f.name for f in dataclasses.fields(kind)))
    return cast(Callable[[Any], tuple[Any, ...]], getter)


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    """The fields of a dataclass, in order; None for any other type (a dataclass's class
    itself included)."""
    try:
        return _FIELD_NAMES[kind]
    except KeyError:
        pass
    names = None
    if kind is not type and dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in dataclasses.fields(kind))
    _FIELD_NAMES[kind] = names
    return names


@functools.cache
def _makers() -> str:
    here = Path(__file__).parent.parent
    code = hashlib.sha256()
    for name in _MAKERS:
        code.update((here / name).read_bytes())
    return code.hexdigest()
