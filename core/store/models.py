"""SQLAlchemy models of the desired state.

Uniqueness rules of the design are database constraints, not only checks in Python, so
that two processes (or two network hosts sharing PostgreSQL) cannot both win a race.
Addresses are stored twice: as text for people and as an integer for range queries.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


instance_security_groups = Table(
    "instance_security_groups",
    Base.metadata,
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "security_group_id",
        ForeignKey("security_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # Which manager gives this project its addresses: flat, flatdhcp or vlan.
    manager: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (CheckConstraint("manager IN ('flat','flatdhcp','vlan')", name="manager"),)


class Host(Base):
    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(32), default="network")
    last_heartbeat: Mapped[datetime | None] = mapped_column(DateTime)


class Network(Base):
    __tablename__ = "networks"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(63))
    manager: Mapped[str] = mapped_column(String(16))
    cidr: Mapped[str] = mapped_column(String(18), unique=True)
    first_int: Mapped[int] = mapped_column(BigInteger, index=True)
    last_int: Mapped[int] = mapped_column(BigInteger)
    netmask: Mapped[str] = mapped_column(String(15))
    gateway: Mapped[str] = mapped_column(String(15))
    broadcast: Mapped[str] = mapped_column(String(15))
    dhcp_start: Mapped[str] = mapped_column(String(15))
    dns1: Mapped[str | None] = mapped_column(String(15))
    dns2: Mapped[str | None] = mapped_column(String(15))
    bridge: Mapped[str] = mapped_column(String(15))
    bridge_interface: Mapped[str | None] = mapped_column(String(15))
    # 'vlan' (802.1Q, ids 1-4094) or 'vxlan' (VNI); None for the flat managers.
    segmentation: Mapped[str | None] = mapped_column(String(8))
    vlan: Mapped[int | None] = mapped_column(Integer, unique=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="RESTRICT"), unique=True
    )
    host: Mapped[str | None] = mapped_column(String(255))
    vpn_public_address: Mapped[str | None] = mapped_column(String(15))
    vpn_public_port: Mapped[int | None] = mapped_column(Integer, unique=True)
    vpn_private_address: Mapped[str | None] = mapped_column(String(15))
    # Whether the project's VPN server should run (`vpn run` / `vpn stop`).
    vpn_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project | None] = relationship()

    __table_args__ = (
        CheckConstraint("manager IN ('flat','flatdhcp','vlan')", name="manager"),
        CheckConstraint(
            "(manager = 'vlan') = (vlan IS NOT NULL)", name="vlan_only_for_vlan_manager"
        ),
        CheckConstraint("manager = 'vlan' OR project_id IS NULL", name="flat_is_shared"),
    )


class FixedIP(Base):
    __tablename__ = "fixed_ips"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(15), unique=True)
    address_int: Mapped[int] = mapped_column(BigInteger)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("instances.id", ondelete="SET NULL"), index=True
    )
    mac: Mapped[str | None] = mapped_column(String(17), unique=True)
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    allocated: Mapped[bool] = mapped_column(Boolean, default=False)
    leased: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the instance let go of it; a lease still held then is waited for, up to a limit.
    released_at: Mapped[datetime | None] = mapped_column(DateTime)

    network: Mapped[Network] = relationship()
    instance: Mapped[Instance | None] = relationship(back_populates="fixed_ips")

    __table_args__ = (
        Index("ix_fixed_ips_network_address", "network_id", "address_int"),
        # Free addresses in address order: the allocation query walks only this index,
        # so its cost does not grow as the network fills up.
        Index(
            "ix_fixed_ips_free",
            "network_id",
            "address_int",
            sqlite_where=(
                (Column("instance_id").is_(None))
                & (Column("reserved") == false())
                & (Column("leased") == false())
            ),
            postgresql_where=(
                (Column("instance_id").is_(None))
                & (Column("reserved") == false())
                & (Column("leased") == false())
            ),
        ),
    )


class FloatingIP(Base):
    __tablename__ = "floating_ips"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(15), unique=True)
    address_int: Mapped[int] = mapped_column(BigInteger, unique=True)
    pool: Mapped[str] = mapped_column(String(63))
    host: Mapped[str] = mapped_column(String(255))
    interface: Mapped[str] = mapped_column(String(15))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="RESTRICT"), index=True
    )
    # One floating IP per fixed IP: the SNAT map needs one source for one target.
    fixed_ip_id: Mapped[int | None] = mapped_column(
        ForeignKey("fixed_ips.id", ondelete="RESTRICT"), unique=True
    )
    auto_assigned: Mapped[bool] = mapped_column(Boolean, default=False)

    project: Mapped[Project | None] = relationship()
    fixed_ip: Mapped[FixedIP | None] = relationship()

    __table_args__ = (
        Index(
            "ix_floating_ips_free",
            "pool",
            "address_int",
            sqlite_where=Column("project_id").is_(None),
            postgresql_where=Column("project_id").is_(None),
        ),
        CheckConstraint(
            "fixed_ip_id IS NULL OR project_id IS NOT NULL", name="associated_is_allocated"
        ),
    )


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))
    host: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship()
    fixed_ips: Mapped[list[FixedIP]] = relationship(back_populates="instance")
    security_groups: Mapped[list[SecurityGroup]] = relationship(secondary=instance_security_groups)


class SecurityGroup(Base):
    __tablename__ = "security_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(String(255), default="")

    project: Mapped[Project] = relationship()
    rules: Mapped[list[SecurityGroupRule]] = relationship(
        foreign_keys="SecurityGroupRule.group_id",
        cascade="all, delete-orphan",
        order_by="SecurityGroupRule.id",
    )

    __table_args__ = (UniqueConstraint("project_id", "name"),)


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("security_groups.id", ondelete="CASCADE"))
    protocol: Mapped[str] = mapped_column(String(4))
    # tcp/udp: a port range; icmp: type and code, -1 meaning any.
    from_port: Mapped[int] = mapped_column(Integer)
    to_port: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str | None] = mapped_column(String(18))
    source_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE")
    )

    source_group: Mapped[SecurityGroup | None] = relationship(foreign_keys=[source_group_id])

    __table_args__ = (
        CheckConstraint("protocol IN ('tcp','udp','icmp')", name="protocol"),
        CheckConstraint("(cidr IS NULL) <> (source_group_id IS NULL)", name="one_source"),
    )


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
