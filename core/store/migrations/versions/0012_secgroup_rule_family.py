"""Security-group rules name their family (IPv4 or IPv6); the default group lets its
members in over both

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 16:00:00

Every rule made before judged IPv4 only, and stays so (its ethertype is IPv4). A rule's
CIDR may now be an IPv6 one, so the column is as wide as the longest IPv6 CIDR.

Each default group's rule that lets in any protocol from the group's own members gets
its IPv6 twin, as a new project's default group has (Neutron's default group has one
such rule per ethertype): once the hosts judge IPv6, members of a default group would
otherwise stop reaching each other over IPv6.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("security_group_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ethertype", sa.String(length=4), server_default="IPv4", nullable=False)
        )
        batch_op.alter_column(
            "cidr", existing_type=sa.String(length=18), type_=sa.String(length=43)
        )
        batch_op.create_check_constraint("ethertype", "ethertype IN ('IPv4','IPv6')")
    op.execute(
        "INSERT INTO security_group_rules "
        "(group_id, protocol, from_port, to_port, cidr, source_group_id, ethertype) "
        "SELECT r.group_id, 'any', -1, -1, NULL, r.group_id, 'IPv6' "
        "FROM security_group_rules r JOIN security_groups g ON g.id = r.group_id "
        "WHERE g.name = 'default' AND r.protocol = 'any' AND r.source_group_id = r.group_id "
        "AND r.ethertype = 'IPv4' AND NOT EXISTS (SELECT 1 FROM security_group_rules t "
        "WHERE t.group_id = r.group_id AND t.protocol = 'any' "
        "AND t.source_group_id = r.group_id AND t.ethertype = 'IPv6')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM security_group_rules WHERE ethertype = 'IPv6'")
    with op.batch_alter_table("security_group_rules", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_security_group_rules_ethertype"), type_="check")
        batch_op.alter_column(
            "cidr", existing_type=sa.String(length=43), type_=sa.String(length=18)
        )
        batch_op.drop_column("ethertype")
