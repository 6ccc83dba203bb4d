"""Every named thing's name is unique whatever its case; floating IP pools get a table

Revision ID: 0008
Revises: 0003
Create Date: 2026-12-07 10:00:00

Projects, security groups (within a project), keys (within a project) and floating IP
pools join instances (0004): two names that differ only in case are refused by the
database. A pool was only a column of floating_ips; it becomes a row of floating_pools
that each floating IP refers to, so its name can carry that rule.

A database that already holds such twins is not changed: renaming a project or a pool
would break what scripts, VPN clients and other hosts know it by, and picking one to
delete is the admin's choice. The upgrade stops, names every twin in one line and leaves
the database as it was (the transaction is rolled back).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0003'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# What to look for: (what they are, SQL giving each twin's names and owner).
TWINS = (
    (
        "projects",
        "SELECT min(name), max(name), '' FROM projects GROUP BY lower(name) "
        "HAVING count(*) > 1",
    ),
    (
        "security groups",
        "SELECT min(g.name), max(g.name), min(p.name) FROM security_groups g "
        "JOIN projects p ON p.id = g.project_id GROUP BY g.project_id, lower(g.name) "
        "HAVING count(*) > 1",
    ),
    (
        "keys",
        "SELECT min(k.name), max(k.name), min(p.name) FROM keys k "
        "JOIN projects p ON p.id = k.project_id GROUP BY k.project_id, lower(k.name) "
        "HAVING count(*) > 1",
    ),
    (
        "floating IP pools",
        "SELECT min(pool), max(pool), '' FROM floating_ips GROUP BY lower(pool) "
        "HAVING count(DISTINCT pool) > 1",
    ),
)


def _twins() -> list[str]:
    connection = op.get_bind()
    found = []
    for what, sql in TWINS:
        for first, last, owner in connection.exec_driver_sql(sql + " ORDER BY 1"):
            of = f" of project {owner}" if owner else ""
            found.append(f"{what} {first!r} and {last!r}{of}")
    return found


def upgrade() -> None:
    twins = _twins()
    if twins:
        raise RuntimeError(
            "cannot upgrade to schema 0008, where names ignore case; these differ only "
            "in case: "
            + "; ".join(twins)
            + ". Nothing was changed: rename or delete one of each (with the netcon that "
            "made this database, or in SQL), then open it again"
        )
    op.execute("CREATE UNIQUE INDEX ix_projects_name_lower ON projects (lower(name))")
    op.execute(
        "CREATE UNIQUE INDEX ix_security_groups_project_id_name_lower "
        "ON security_groups (project_id, lower(name))"
    )
    op.execute(
        "CREATE UNIQUE INDEX ix_keys_project_id_name_lower ON keys (project_id, lower(name))"
    )
    op.create_table(
        'floating_pools',
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_floating_pools')),
    )
    op.execute("CREATE UNIQUE INDEX ix_floating_pools_name_lower ON floating_pools (lower(name))")
    op.execute("INSERT INTO floating_pools (name) SELECT DISTINCT pool FROM floating_ips")
    with op.batch_alter_table('floating_ips', schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f('fk_floating_ips_pool_floating_pools'),
            'floating_pools',
            ['pool'],
            ['name'],
            ondelete='RESTRICT',
        )
    # SQLite's batch copies the table, and the copy loses the partial index of free
    # addresses, which SQLAlchemy cannot reflect with its condition: make it again.
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_floating_ips_free ON floating_ips (pool, address_int) "
        "WHERE project_id IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('floating_ips', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_floating_ips_pool_floating_pools'), type_='foreignkey'
        )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_floating_ips_free ON floating_ips (pool, address_int) "
        "WHERE project_id IS NULL"
    )
    op.drop_table('floating_pools')
    op.execute("DROP INDEX ix_keys_project_id_name_lower")
    op.execute("DROP INDEX ix_security_groups_project_id_name_lower")
    op.execute("DROP INDEX ix_projects_name_lower")
