"""Several network hosts: what each has applied, which changes concern which host,
multi-host networks and the per-host gateway addresses they take

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("applied_change", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("applied_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("error_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("multi_host", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("fixed_ips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=True))
    op.create_table(
        "host_changes",
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("networks", sa.Text(), nullable=False),
        sa.Column("floating", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("change_id", "host", name=op.f("pk_host_changes")),
    )
    op.create_index("ix_host_changes_host_change", "host_changes", ["host", "change_id"])


def downgrade() -> None:
    op.drop_index("ix_host_changes_host_change", table_name="host_changes")
    op.drop_table("host_changes")
    with op.batch_alter_table("fixed_ips", schema=None) as batch_op:
        batch_op.drop_column("host")
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.drop_column("multi_host")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("error_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("applied_at")
        batch_op.drop_column("applied_change")
