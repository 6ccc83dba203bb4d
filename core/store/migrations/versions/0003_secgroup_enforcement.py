"""Security groups enforced: 'any' protocol, member look-ups by group, default group rule

Revision ID: 0003
Revises: 0007
Create Date: 2026-11-24 10:00:00

A project's default group that has no rule yet gets one allowing ingress of any protocol
from the group's own members (Neutron's default). Before this revision rules were data
only and every port was open, so an empty default group would otherwise cut existing
instances off from one another the moment the host starts enforcing groups.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0007'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_security_group_rules_protocol'), type_='check')
        batch_op.create_check_constraint(
            'protocol', "protocol IN ('tcp','udp','icmp','any')"
        )
        batch_op.create_index(
            batch_op.f('ix_security_group_rules_source_group_id'), ['source_group_id'], unique=False
        )
    with op.batch_alter_table('instance_security_groups', schema=None) as batch_op:
        batch_op.create_index(
            'ix_instance_security_groups_security_group_id', ['security_group_id'], unique=False
        )
    op.execute(
        "INSERT INTO security_group_rules (group_id, protocol, from_port, to_port, cidr, source_group_id) "
        "SELECT g.id, 'any', -1, -1, NULL, g.id FROM security_groups g "
        "WHERE g.name = 'default' AND NOT EXISTS "
        "(SELECT 1 FROM security_group_rules r WHERE r.group_id = g.id)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM security_group_rules WHERE protocol = 'any'")
    with op.batch_alter_table('instance_security_groups', schema=None) as batch_op:
        batch_op.drop_index('ix_instance_security_groups_security_group_id')
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_group_rules_source_group_id'))
        batch_op.drop_constraint(op.f('ck_security_group_rules_protocol'), type_='check')
        batch_op.create_check_constraint('protocol', "protocol IN ('tcp','udp','icmp')")
