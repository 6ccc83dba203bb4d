"""Listings as JSON text, built by the database.

A /16 pool is 65,534 floating IPs: turning them into Python objects and encoding them
takes longer than a whole command may last, while SQLite's and PostgreSQL's own JSON
functions write the same objects in a fraction of that time. Each row becomes one
object (in the query's order); the array is joined here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, Text, cast, func, literal


def json_array(connection: Connection, query: Select[Any], fields: Sequence[str]) -> str:
    """``query``'s rows as a JSON array of objects with ``fields`` (its column labels)."""
    columns = {column.key: column for column in query.selected_columns}
    pairs: list[Any] = []
    for name in fields:
        pairs += [literal(name), columns[name]]
    if connection.dialect.name == "postgresql":
        document: Any = cast(func.json_build_object(*pairs), Text)
    else:
        document = func.json_object(*pairs)
    rows = connection.execute(query.with_only_columns(document)).scalars()
    return "[" + ",".join(rows) + "]"
