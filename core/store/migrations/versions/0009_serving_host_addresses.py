"""Every network host serves on its own addresses: each host records its VPN address,
a VPN's public address is its network's host's (no copy stamped on the network), the
client configurations handed out are recorded, and per-host gateway addresses are found
by host

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00

`network create` used to copy the creating process's vpn_ip into
networks.vpn_public_address, which then named a host the network may have left. Each
host now says its own address (hosts.vpn_ip, written when it heartbeats or applies); the
copies are dropped, not carried over (they may name another host), and a downgrade
writes them back from each network's host.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vpn_ip", sa.String(length=15), nullable=True))
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.drop_column("vpn_public_address")
    with op.batch_alter_table("fixed_ips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fixed_ips_host"), ["host"], unique=False)
    op.create_table(
        "vpn_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=63), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=15), nullable=True),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_vpn_clients_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vpn_clients")),
        sa.UniqueConstraint(
            "project_id", "username", name=op.f("uq_vpn_clients_project_id_username")
        ),
    )


def downgrade() -> None:
    op.drop_table("vpn_clients")
    with op.batch_alter_table("fixed_ips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fixed_ips_host"))
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vpn_public_address", sa.String(length=15), nullable=True))
    op.execute(
        "UPDATE networks SET vpn_public_address = (SELECT hosts.vpn_ip FROM hosts "
        "WHERE hosts.name = networks.host) WHERE networks.manager = 'vlan'"
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("vpn_ip")
