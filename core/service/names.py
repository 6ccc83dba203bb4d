"""One rule for every named thing: a name is taken whatever its case.

Projects, security groups, keys, floating IP pools and instances are named by people and
scripts; ``ALPHA`` beside ``alpha`` is a mistake waiting to be made (and instance names
are DHCP and DNS names, which ignore case). The database holds the same rule as unique
indexes on ``lower(name)``; this check runs first so the refusal names the field and the
name already taken.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, func, select

from core.errors import Conflict


def refuse_taken(
    connection: Connection,
    column: Column[Any],
    name: str,
    *where: Any,
    field: str,
    taken: str | None,
    what: str,
) -> bool:
    """Refuse ``name`` when ``column`` (among the rows ``where`` selects) holds it in
    another case, naming ``what`` holds it ("project", "alpha's key"); the very same name
    is refused with the words ``taken``, or, when ``taken`` is None, is the thing itself
    (True is returned: it exists)."""
    twin = connection.execute(
        select(column).where(func.lower(column) == name.lower(), *where).limit(1)
    ).scalar()
    if twin is None:
        return False
    if twin != name:
        raise Conflict(
            field, f"{name!r} differs only in case from {what} {twin!r} (names ignore case)"
        )
    if taken is not None:
        raise Conflict(field, taken)
    return True
