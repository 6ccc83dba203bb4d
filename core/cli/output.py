"""How results look: a table or a key/value list for people, JSON with the same keys for scripts.

Every command describes its rows once, as columns; the JSON of a row is an object whose
keys are those columns' keys, so a script reads the same fields a person sees. Lists are
arrays of such objects, one result is one object, and errors under ``--json`` are one
object on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import IO, Any


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    value: Callable[[Any], object]
    # Words for the table cell, where the value itself is structured (a list of objects).
    text: Callable[[Any], str] | None = None

    def cell(self, row: Any) -> str:
        if self.text is not None:
            return self.text(row)
        return cell_text(self.value(row))


def col(
    header: str,
    key: str | None = None,
    *,
    value: Callable[[Any], object] | None = None,
    text: Callable[[Any], str] | None = None,
) -> Column:
    """A column named ``header``; its JSON key and attribute default to the header in
    snake case (``FLOATING IPS`` → ``floating_ips``)."""
    name = key or header.lower().replace(" ", "_").replace(":", "_")
    return Column(header, name, value or attrgetter(name), text)


Columns = tuple[Column, ...]


def cell_text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value) or "-"
    return str(value)


def plain(value: object) -> object:
    """A JSON-ready copy of a column value."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    as_dict = getattr(value, "_asdict", None)  # a view (named tuple)
    if as_dict is not None:
        return plain(as_dict())
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def record(row: Any, columns: Columns) -> dict[str, object]:
    return {c.key: plain(c.value(row)) for c in columns}


class Output:
    """Writes results to one stream, as text or as JSON."""

    def __init__(self, stream: IO[str], *, as_json: bool, compact: bool = False) -> None:
        self.stream = stream
        self.json = as_json
        # A batch prints one JSON document per line, so a script can read them one by one.
        self.compact = compact

    def rows(self, rows: Iterable[Any], columns: Columns) -> None:
        if self.json:
            self._rows_json(rows, columns)
            return
        table = [[c.cell(row) for c in columns] for row in rows]
        headers = [c.header for c in columns]
        widths = [max([len(h)] + [len(r[i]) for r in table]) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
        ]
        self.stream.write("\n".join(lines) + "\n")

    def _rows_json(self, rows: Iterable[Any], columns: Columns) -> None:
        # One object per line through the C encoder: a /16 of floating IPs is 65,534
        # objects, and json's indenting encoder is pure Python.
        items = [json.dumps(record(row, columns)) for row in rows]
        if self.compact:
            self.stream.write("[" + ",".join(items) + "]\n")
        elif items:
            self.stream.write("[\n  " + ",\n  ".join(items) + "\n]\n")
        else:
            self.stream.write("[]\n")

    def one(self, row: Any, columns: Columns) -> None:
        if self.json:
            self.document(record(row, columns))
            return
        width = max(len(c.header) for c in columns)
        self.stream.write("".join(f"{c.header:<{width}}  {c.cell(row)}\n" for c in columns))

    def outcome(self, row: Any, columns: Columns, message: str) -> None:
        """A change to one thing (or its deletion): one sentence for people; for scripts the
        thing itself, with the keys ``show`` or ``list`` gives it."""
        if self.json:
            self.document(record(row, columns))
        else:
            self.stream.write(message + "\n")

    def done(self, message: str, result: dict[str, object]) -> None:
        """A change that returns no row: a sentence for people, its facts for scripts."""
        if self.json:
            self.document(result)
        else:
            self.stream.write(message + "\n")

    def lines(self, lines: Sequence[str], result: dict[str, object]) -> None:
        if self.json:
            self.document(result)
        else:
            self.stream.write("".join(line + "\n" for line in lines))

    def text(self, text: str) -> None:
        """Output made elsewhere (a JSON listing the database wrote), as it is."""
        self.stream.write(text + "\n")

    def document(self, value: object) -> None:
        indent = None if self.compact else 2
        self.stream.write(json.dumps(plain(value), indent=indent) + "\n")


def error_document(
    message: str,
    exit_status: int,
    field: str | None = None,
    rule: str | None = None,
    *,
    where: str = "",
) -> str:
    """The JSON an error prints on stderr under ``--json``: a script never parses English.

    ``where`` is the line of a batch the error comes from (``line 12``)."""
    body: dict[str, object] = {
        "field": field,
        "rule": rule if rule is not None else message,
        "message": message,
        "exit_status": exit_status,
    }
    if where:
        body["where"] = where
    return json.dumps({"error": body})
