"""The schema comes from Alembic migrations, and they match the models."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from core.store import schema
from core.store.db import Database
from core.store.migrate import alembic_config, head_revision
from tests.support import make_service


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrated_schema_matches_models(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'n.db'}")
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision()
        differences = [
            d
            for d in compare_metadata(context, schema.metadata)
            # SQLite cannot tell Alembic about partial-index predicates; skip index noise.
            if not (isinstance(d, tuple) and d[0] in ("add_index", "remove_index"))
        ]
    assert differences == []


def test_old_database_is_upgraded_on_open_with_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql(
            "INSERT INTO projects (name, manager, created_at) VALUES ('old', 'vlan', '2020-01-01')"
        )
    engine.dispose()
    service = make_service(tmp_path, url=url)
    assert [p.name for p in service.list_projects()] == ["old"]
    row = sqlite3.connect(tmp_path / "n.db").execute("SELECT * FROM alembic_version").fetchone()
    assert row == (head_revision(),)


def test_database_uses_wal(tmp_path: Path) -> None:
    make_service(tmp_path)
    mode = sqlite3.connect(tmp_path / "netcon.db").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def test_every_index_survives_the_migrations(tmp_path: Path) -> None:
    # SQLite's batch migrations copy tables, and a copy keeps only the indexes
    # SQLAlchemy can reflect: the partial and expression ones must be made again.
    make_service(tmp_path)
    rows = sqlite3.connect(tmp_path / "netcon.db").execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    )
    indexes = dict(rows.fetchall())
    assert "lower(name)" in indexes["ix_instances_name_lower"]
    assert "WHERE instance_id IS NULL" in indexes["ix_fixed_ips_free"]
    assert "WHERE project_id IS NULL" in indexes["ix_floating_ips_free"]
