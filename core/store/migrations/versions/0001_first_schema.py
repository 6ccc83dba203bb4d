"""first schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 22:54:02.193342
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('before', sa.Text(), nullable=True),
    sa.Column('after', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)

    op.create_table('hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('last_heartbeat', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hosts')),
    sa.UniqueConstraint('name', name=op.f('uq_hosts_name'))
    )
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('manager', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("manager IN ('flat','flatdhcp','vlan')", name=op.f('ck_projects_manager')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('name', name=op.f('uq_projects_name'))
    )
    op.create_table('instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_instances_project_id_projects'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instances')),
    sa.UniqueConstraint('name', name=op.f('uq_instances_name'))
    )
    op.create_table('networks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=63), nullable=False),
    sa.Column('manager', sa.String(length=16), nullable=False),
    sa.Column('cidr', sa.String(length=18), nullable=False),
    sa.Column('first_int', sa.BigInteger(), nullable=False),
    sa.Column('last_int', sa.BigInteger(), nullable=False),
    sa.Column('netmask', sa.String(length=15), nullable=False),
    sa.Column('gateway', sa.String(length=15), nullable=False),
    sa.Column('broadcast', sa.String(length=15), nullable=False),
    sa.Column('dhcp_start', sa.String(length=15), nullable=False),
    sa.Column('dns1', sa.String(length=15), nullable=True),
    sa.Column('dns2', sa.String(length=15), nullable=True),
    sa.Column('bridge', sa.String(length=15), nullable=False),
    sa.Column('bridge_interface', sa.String(length=15), nullable=True),
    sa.Column('segmentation', sa.String(length=8), nullable=True),
    sa.Column('vlan', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('vpn_public_address', sa.String(length=15), nullable=True),
    sa.Column('vpn_public_port', sa.Integer(), nullable=True),
    sa.Column('vpn_private_address', sa.String(length=15), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(manager = 'vlan') = (vlan IS NOT NULL)", name=op.f('ck_networks_vlan_only_for_vlan_manager')),
    sa.CheckConstraint("manager = 'vlan' OR project_id IS NULL", name=op.f('ck_networks_flat_is_shared')),
    sa.CheckConstraint("manager IN ('flat','flatdhcp','vlan')", name=op.f('ck_networks_manager')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_networks_project_id_projects'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_networks')),
    sa.UniqueConstraint('cidr', name=op.f('uq_networks_cidr')),
    sa.UniqueConstraint('project_id', name=op.f('uq_networks_project_id')),
    sa.UniqueConstraint('vlan', name=op.f('uq_networks_vlan')),
    sa.UniqueConstraint('vpn_public_port', name=op.f('uq_networks_vpn_public_port'))
    )
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_networks_first_int'), ['first_int'], unique=False)

    op.create_table('security_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_security_groups_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_groups')),
    sa.UniqueConstraint('project_id', 'name', name=op.f('uq_security_groups_project_id_name'))
    )
    op.create_table('fixed_ips',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=15), nullable=False),
    sa.Column('address_int', sa.BigInteger(), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('mac', sa.String(length=17), nullable=True),
    sa.Column('reserved', sa.Boolean(), nullable=False),
    sa.Column('allocated', sa.Boolean(), nullable=False),
    sa.Column('leased', sa.Boolean(), nullable=False),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_fixed_ips_instance_id_instances'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_fixed_ips_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fixed_ips')),
    sa.UniqueConstraint('address', name=op.f('uq_fixed_ips_address')),
    sa.UniqueConstraint('mac', name=op.f('uq_fixed_ips_mac'))
    )
    with op.batch_alter_table('fixed_ips', schema=None) as batch_op:
        batch_op.create_index('ix_fixed_ips_free', ['network_id', 'address_int'], unique=False, sqlite_where=sa.text('instance_id IS NULL AND reserved = 0 AND leased = 0'), postgresql_where=sa.text('instance_id IS NULL AND reserved = false AND leased = false'))
        batch_op.create_index(batch_op.f('ix_fixed_ips_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index('ix_fixed_ips_network_address', ['network_id', 'address_int'], unique=False)

    op.create_table('instance_security_groups',
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('security_group_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_instance_security_groups_instance_id_instances'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['security_groups.id'], name=op.f('fk_instance_security_groups_security_group_id_security_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('instance_id', 'security_group_id', name=op.f('pk_instance_security_groups'))
    )
    op.create_table('security_group_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('protocol', sa.String(length=4), nullable=False),
    sa.Column('from_port', sa.Integer(), nullable=False),
    sa.Column('to_port', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=18), nullable=True),
    sa.Column('source_group_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("protocol IN ('tcp','udp','icmp')", name=op.f('ck_security_group_rules_protocol')),
    sa.CheckConstraint('(cidr IS NULL) <> (source_group_id IS NULL)', name=op.f('ck_security_group_rules_one_source')),
    sa.ForeignKeyConstraint(['group_id'], ['security_groups.id'], name=op.f('fk_security_group_rules_group_id_security_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_group_id'], ['security_groups.id'], name=op.f('fk_security_group_rules_source_group_id_security_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_group_rules'))
    )
    op.create_table('floating_ips',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=15), nullable=False),
    sa.Column('address_int', sa.BigInteger(), nullable=False),
    sa.Column('pool', sa.String(length=63), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('interface', sa.String(length=15), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('fixed_ip_id', sa.Integer(), nullable=True),
    sa.Column('auto_assigned', sa.Boolean(), nullable=False),
    sa.CheckConstraint('fixed_ip_id IS NULL OR project_id IS NOT NULL', name=op.f('ck_floating_ips_associated_is_allocated')),
    sa.ForeignKeyConstraint(['fixed_ip_id'], ['fixed_ips.id'], name=op.f('fk_floating_ips_fixed_ip_id_fixed_ips'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_floating_ips_project_id_projects'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_floating_ips')),
    sa.UniqueConstraint('address', name=op.f('uq_floating_ips_address')),
    sa.UniqueConstraint('address_int', name=op.f('uq_floating_ips_address_int')),
    sa.UniqueConstraint('fixed_ip_id', name=op.f('uq_floating_ips_fixed_ip_id'))
    )
    with op.batch_alter_table('floating_ips', schema=None) as batch_op:
        batch_op.create_index('ix_floating_ips_free', ['pool', 'address_int'], unique=False, sqlite_where=sa.text('project_id IS NULL'), postgresql_where=sa.text('project_id IS NULL'))
        batch_op.create_index(batch_op.f('ix_floating_ips_project_id'), ['project_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('floating_ips', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_floating_ips_project_id'))
        batch_op.drop_index('ix_floating_ips_free', sqlite_where=sa.text('project_id IS NULL'), postgresql_where=sa.text('project_id IS NULL'))

    op.drop_table('floating_ips')
    op.drop_table('security_group_rules')
    op.drop_table('instance_security_groups')
    with op.batch_alter_table('fixed_ips', schema=None) as batch_op:
        batch_op.drop_index('ix_fixed_ips_network_address')
        batch_op.drop_index(batch_op.f('ix_fixed_ips_instance_id'))
        batch_op.drop_index('ix_fixed_ips_free', sqlite_where=sa.text('instance_id IS NULL AND reserved = 0 AND leased = 0'), postgresql_where=sa.text('instance_id IS NULL AND reserved = false AND leased = false'))

    op.drop_table('fixed_ips')
    op.drop_table('security_groups')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_networks_first_int'))

    op.drop_table('networks')
    op.drop_table('instances')
    op.drop_table('projects')
    op.drop_table('hosts')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
