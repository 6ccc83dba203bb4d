"""The filter's operations of an apply as one nft batch: in phase order, so that nothing
is removed while something still refers to it and nothing refers to what is not made
yet, with one command per set for the elements a phase adds to it or deletes from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.linux import nfttext
from core.linux.secgroups import tables as sg
from core.linux.secgroups.operations import Command, FilterOperation


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
                continue
            # Thousands of elements on a first apply: one lookup each, no list made
            # for an element whose set has one already.
            verb, (table, name, text) = item
            key = (phase, verb, table, name)
            texts = staged.get(key)
            if texts is None:
                staged[key] = [text]
            else:
                texts.append(text)
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
    types, _ = sg.spec_of(table, name)
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
