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


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        # Reading the version first keeps the common start (already at head) cheap and
        # free of writes.
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return
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
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
