"""IPv6 beside IPv4: a network's /64, its IPv6 gateway and address mode, and each
instance's IPv6 address

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 13:00:00

Networks made before stay IPv4-only (the new columns are empty); `network modify
--fixed-range-v6` adds IPv6 to one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Columns and unique indexes only: SQLite adds them in place, where a constraint
    # would copy the table and lose its partial indexes.
    op.add_column("networks", sa.Column("cidr_v6", sa.String(length=43), nullable=True))
    op.add_column("networks", sa.Column("gateway_v6", sa.String(length=39), nullable=True))
    op.add_column("networks", sa.Column("ipv6_mode", sa.String(length=16), nullable=True))
    op.create_index("ix_networks_cidr_v6", "networks", ["cidr_v6"], unique=True)
    op.add_column("fixed_ips", sa.Column("address_v6", sa.String(length=39), nullable=True))
    op.create_index("ix_fixed_ips_address_v6", "fixed_ips", ["address_v6"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_fixed_ips_address_v6", table_name="fixed_ips")
    op.drop_index("ix_networks_cidr_v6", table_name="networks")
    with op.batch_alter_table("fixed_ips", schema=None) as batch_op:
        batch_op.drop_column("address_v6")
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.drop_column("ipv6_mode")
        batch_op.drop_column("gateway_v6")
        batch_op.drop_column("cidr_v6")
