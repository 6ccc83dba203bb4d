"""A batch of ``add`` commands (as nfttext writes them, one a line) said again in nft's
block syntax: each table once, its sets and maps with their elements, its chains with
their rules inside.

nft reads a ruleset of thousands of elements and hundreds of rules about 5% faster in
blocks than as one command a line (the same objects; `nft list` writes blocks too), and
the filter's first apply is mostly that reading. What the kernel ends up holding is the
same: nft makes a table block's sets and maps before its chains, and each chain's
rules in their order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.linux.nfttext import UnknownShape


@dataclass
class _Table:
    # name -> [set or map, its declaration's statements, elements added after it]
    sets: dict[str, list[str]] = field(default_factory=dict)
    # name -> its declaration's statements (a base chain's hook), then its rules
    chains: dict[str, list[str]] = field(default_factory=dict)


def as_blocks(lines: Iterable[str]) -> str:
    """``lines``: add commands of tables, sets, maps, chains, rules and elements, each
    table's before anything in it, each set's, map's and chain's before its elements or
    rules."""
    tables: dict[str, _Table] = {}
    for line in lines:
        words = line.split(" ", 5)
        if len(words) < 4 or words[0] != "add":
            raise UnknownShape(f"not an add command of a table's: {line[:60]!r}")
        kind, where = words[1], f"{words[2]} {words[3]}"
        if kind == "table":
            tables.setdefault(where, _Table())
            continue
        table = tables.get(where)
        if table is None or len(words) < 5:
            raise UnknownShape(f"before its table is added: {line[:60]!r}")
        name, rest = words[4], words[5] if len(words) > 5 else ""
        if kind in ("set", "map"):
            table.sets[name] = [kind, _inside(rest, line), ""]
        elif kind == "chain":
            table.chains[name] = [_inside(rest, line)] if rest else [""]
        elif kind == "rule" and name in table.chains:
            table.chains[name].append(rest)
        elif kind == "element" and name in table.sets and _open(table.sets[name]):
            table.sets[name][2] = _inside(rest, line)
        else:
            raise UnknownShape(f"not one a block can hold: {line[:60]!r}")
    out: list[str] = []
    for where, table in tables.items():
        out.append(f"table {where} {{")
        for name, (kind, declared, added) in table.sets.items():
            elements = f" elements = {{ {added} }};" if added else ""
            out.append(f"\t{kind} {name} {{ {declared}{elements} }}")
        for name, (declared, *rules) in table.chains.items():
            out.append(f"\tchain {name} {{")
            if declared:
                out.append(f"\t\t{declared}")
            out += [f"\t\t{rule}" for rule in rules]
            out.append("\t}")
        out.append("}")
    return "\n".join(out) + "\n"


def _open(declared: list[str]) -> bool:
    """Whether a set or map has no elements yet (one list of them is all a block takes)."""
    return not declared[2] and "elements = " not in declared[1]


def _inside(braced: str, line: str) -> str:
    """What is between the outer braces of ``{ ... }``."""
    if not (braced.startswith("{") and braced.endswith("}")):
        raise UnknownShape(f"no braces where they belong: {line[:60]!r}")
    return braced[1:-1].strip()
