"""Alembic migrations, applied when a database is opened."""

from __future__ import annotations

import warnings
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


class MigrationError(RuntimeError):
    pass


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# Held by the process migrating a PostgreSQL database, so that two processes opening a
# new one at once migrate one after the other (SQLite's write lock does that there).
MIGRATION_LOCK = 0x6E63_6D69


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head; returns whether this call made it from nothing (the
    database held no netcon schema when its turn came)."""
    config = alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        # Reading the version first keeps the common start (already at head) cheap and
        # free of writes.
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return False
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite migrations rebuild tables (copy, drop, rename); with foreign keys
            # enforced the drop fails. The pragma only takes effect outside a transaction.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        try:
            # A write transaction from the start: two processes opening a new database
            # at once migrate one after the other (the second finds nothing to do).
            with connection.execution_options(netcon_write=True).begin():
                if not sqlite:
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                # Read again under the lock: another process may have migrated meanwhile.
                created = MigrationContext.configure(connection).get_current_revision() is None
                config.attributes["connection"] = connection
                with warnings.catch_warnings():
                    # Batch copies of instances cannot reflect its lower(name) index;
                    # the migrations make it again themselves.
                    warnings.filterwarnings("ignore", message=".*expression-based index")
                    command.upgrade(config, "head")
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise MigrationError(f"migration broke foreign keys: {broken[:3]}")
            return created
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
