"""What a guest gets: per-network MTU and lease time, project keys, user data

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mtu", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dhcp_lease_time", sa.Integer(), nullable=True))
    op.create_table(
        "keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keys")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_keys_project_id_name")),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_data", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_instances_key_id_keys"), "keys", ["key_id"], ["id"], ondelete="SET NULL"
        )
    # SQLite's batch copies the table, and the copy loses the expression index on
    # lower(name), which SQLAlchemy cannot reflect: make it again.
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS ix_instances_name_lower ON instances (lower(name))"
    )


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_instances_key_id_keys"), type_="foreignkey")
        batch_op.drop_column("key_id")
        batch_op.drop_column("user_data")
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS ix_instances_name_lower ON instances (lower(name))"
    )
    op.drop_table("keys")
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.drop_column("dhcp_lease_time")
        batch_op.drop_column("mtu")
