"""`netcon init`: make a database on purpose (its directory, its schema)."""

from __future__ import annotations

from core.cli.context import Context
from core.cli.spec import Command


def init_database(ctx: Context) -> None:
    db = ctx.service.db
    state = "created" if db.created else "already there"
    ctx.output.done(
        f"netcon database {db.safe_url}: {state}, schema {db.revision()}",
        {"database": db.safe_url, "created": db.created, "schema": db.revision()},
    )


command = Command(
    "init",
    "make a netcon database at --db (or the default path), with its directory and schema",
    (),
    init_database,
)
