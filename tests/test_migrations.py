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


# -- 0008: names unique whatever their case, floating IP pools as rows ---------------------

TWINS_SQL = (
    "INSERT INTO projects (id, name, manager, created_at) VALUES "
    "(1, 'alpha', 'vlan', '2026-01-01'), (2, 'ALPHA', 'vlan', '2026-01-01')",
    "INSERT INTO security_groups (project_id, name, description) VALUES "
    "(1, 'web', ''), (1, 'WEB', ''), (2, 'web', '')",
    "INSERT INTO keys (project_id, name, public_key, fingerprint, created_at) VALUES "
    "(1, 'admin', 'k', 'f', '2026-01-01'), (1, 'Admin', 'k', 'f', '2026-01-01')",
    "INSERT INTO floating_ips (address, address_int, pool, host, interface, auto_assigned) "
    "VALUES ('203.0.113.1', 3405803777, 'public', 'h1', 'eth0', false), "
    "('203.0.113.2', 3405803778, 'Public', 'h1', 'eth0', false), "
    "('203.0.113.3', 3405803779, 'public', 'h1', 'eth0', false)",
)


def _database_at(url: str, revision: str, statements: tuple[str, ...]) -> None:
    """A database made by an older netcon, at ``revision``, holding ``statements``' rows."""
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for statement in statements:
            connection.exec_driver_sql(statement)
    engine.dispose()


def _rows(url: str) -> tuple[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        rows = [
            tuple(row)
            for table in ("projects", "security_groups", "keys", "floating_ips")
            for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")
        ]
    engine.dispose()
    return str(version), rows


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'n.db'}"


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_twins_in_case_stop_the_upgrade_in_one_line_and_change_nothing(old_url: str) -> None:
    from core.errors import DatabaseError

    _database_at(old_url, "0003", TWINS_SQL)
    before = _rows(old_url)
    with pytest.raises(DatabaseError) as stopped:
        Database(old_url)
    message = stopped.value.message
    assert "\n" not in message
    for twin in (
        "projects 'ALPHA' and 'alpha'",
        "security groups 'WEB' and 'web' of project alpha",
        "keys 'Admin' and 'admin' of project alpha",
        "floating IP pools 'Public' and 'public'",
    ):
        assert twin in message, message
    assert "of project ALPHA" not in message  # 'web' of ALPHA twins nothing
    assert "Nothing was changed" in message and "rename or delete one" in message
    assert _rows(old_url) == before  # still at 0003, every row as it was

    # Once the admin has renamed one of each, the database opens and is upgraded.
    engine = create_engine(old_url)
    with engine.begin() as connection:
        for statement in (
            "UPDATE projects SET name = 'alpha2' WHERE name = 'ALPHA'",
            "UPDATE security_groups SET name = 'web2' WHERE name = 'WEB'",
            "UPDATE keys SET name = 'admin2' WHERE name = 'Admin'",
            "UPDATE floating_ips SET pool = 'public2' WHERE pool = 'Public'",
        ):
            connection.exec_driver_sql(statement)
    engine.dispose()
    database = Database(old_url)
    assert database.revision() == head_revision()
    with database.engine.connect() as connection:
        pools = connection.exec_driver_sql("SELECT name FROM floating_pools ORDER BY 1")
        assert [row[0] for row in pools] == ["public", "public2"]
    database.dispose()


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_the_upgrade_keeps_every_pool_and_its_addresses(old_url: str) -> None:
    from sqlalchemy.exc import IntegrityError

    _database_at(old_url, "0003", TWINS_SQL[3:] + (
        "UPDATE floating_ips SET pool = 'nova' WHERE pool = 'Public'",
    ))  # fmt: skip
    database = Database(old_url)
    with database.engine.connect() as connection:
        pools = connection.exec_driver_sql("SELECT name FROM floating_pools ORDER BY 1")
        assert [row[0] for row in pools] == ["nova", "public"]
        counted = connection.exec_driver_sql(
            "SELECT pool, count(*) FROM floating_ips GROUP BY pool ORDER BY 1"
        )
        assert [tuple(row) for row in counted] == [("nova", 1), ("public", 2)]
    # Every floating IP is in a pool that exists.
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        if database.dialect == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.exec_driver_sql(
            "INSERT INTO floating_ips (address, address_int, pool, host, interface, "
            "auto_assigned) VALUES ('203.0.113.9', 3405803785, 'nowhere', 'h1', 'eth0', false)"
        )
    database.dispose()
