"""instances: names unique whatever their case (they are DHCP and DNS names)

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-29 22:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    clash = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT lower(name) FROM instances GROUP BY lower(name) HAVING count(*) > 1 LIMIT 1"
        )
        .scalar()
    )
    if clash is not None:
        raise RuntimeError(
            f"instances named {clash!r} in different cases share one DHCP and DNS name; "
            "terminate or rename all but one, then open the database again"
        )
    op.execute("CREATE UNIQUE INDEX ix_instances_name_lower ON instances (lower(name))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_instances_name_lower")
