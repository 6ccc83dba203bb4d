"""Every kind of scope a change has is recorded for the hosts that owe it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:50:00

A host's owed change said which networks and floating IPs it touched; one that touched
neither (a security-group rule, a VPN started) was applied as a comparison of the whole
host. It now also says whether the security-group filter changed, at which keys
(the groups whose rules changed, the instance ports that came, went or changed
groups), and which projects' VPN servers, so an agent applies it as narrowly as the
command's own apply does. Rows already owed keep their meaning: neither security nor VPNs, so
one naming no network or floating IP is still a whole-host comparison.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("host_changes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("security", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("groups", sa.Text(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("ports", sa.Text(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("vpns", sa.Text(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("host_changes", schema=None) as batch_op:
        batch_op.drop_column("vpns")
        batch_op.drop_column("ports")
        batch_op.drop_column("groups")
        batch_op.drop_column("security")
