"""The database schema: the desired state of every network host, as SQLAlchemy Core tables.

Uniqueness rules of the design are database constraints, not only checks in Python, so
that two processes (or two network hosts sharing PostgreSQL) cannot both win a race.
Addresses are stored twice: as text for people and as an integer for range queries.

The service works on these tables with SQLAlchemy Core, without the ORM: a command that
lists a /16 of floating IPs reads 65,534 rows as tuples, and every command starts without
paying for the ORM's import and mapper set-up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _required(name: str, *args: Any, **options: Any) -> Column[Any]:
    return Column(name, *args, nullable=False, **options)


def _optional(name: str, *args: Any, **options: Any) -> Column[Any]:
    return Column(name, *args, nullable=True, **options)


def _flag(name: str) -> Column[bool]:
    return Column(name, Boolean, nullable=False, default=False)


MANAGER_CHECK = "manager IN ('flat','flatdhcp','vlan')"

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("name", String(63), unique=True),
    # Which manager gives this project its addresses: flat, flatdhcp or vlan.
    _required("manager", String(16)),
    _required("created_at", DateTime, default=utcnow),
    CheckConstraint(MANAGER_CHECK, name="manager"),
)
# Every named thing's name is unique whatever its case (projects, security groups, keys,
# floating IP pools and instances): names typed by people and scripts, where ALPHA and
# alpha side by side would be a mistake waiting to be made.
Index("ix_projects_name_lower", func.lower(projects.c.name), unique=True)

hosts = Table(
    "hosts",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("name", String(255), unique=True),
    _required("role", String(32), default="network"),
    _optional("last_heartbeat", DateTime),
    # What its agent has applied: the last change (an audit event id), when, and the
    # last apply that failed.
    _optional("applied_change", BigInteger),
    _optional("applied_at", DateTime),
    _optional("last_error", Text),
    _optional("error_at", DateTime),
    # The address project VPN clients reach this host at (its vpn_ip setting), as its
    # agent last said: a VPN answers at its network's host's address, wherever that is.
    _optional("vpn_ip", String(15)),
)

networks = Table(
    "networks",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("label", String(63)),
    _required("manager", String(16)),
    _required("cidr", String(18), unique=True),
    _required("first_int", BigInteger, index=True),
    _required("last_int", BigInteger),
    _required("netmask", String(15)),
    _required("gateway", String(15)),
    _required("broadcast", String(15)),
    _required("dhcp_start", String(15)),
    _optional("dns1", String(15)),
    _optional("dns2", String(15)),
    _required("bridge", String(15)),
    _optional("bridge_interface", String(15)),
    # 'vlan' (802.1Q, ids 1-4094) or 'vxlan' (VNI); None for the flat managers.
    _optional("segmentation", String(8)),
    _optional("vlan", Integer, unique=True),
    _optional("project_id", ForeignKey("projects.id", ondelete="RESTRICT"), unique=True),
    _optional("host", String(255)),
    # Unique across the cloud, so that wherever a network moves its VPN's address and
    # port pair is its own (the address is its host's vpn_ip, see hosts).
    _optional("vpn_public_port", Integer, unique=True),
    _optional("vpn_private_address", String(15)),
    # Whether the project's VPN server should run (`vpn run` / `vpn stop`).
    _required("vpn_enabled", Boolean, default=False, server_default=false()),
    # Served by every host that has its instances (nova-network's multi_host): each one
    # routes, answers DHCP and NATs floating IPs for its own instances.
    _required("multi_host", Boolean, default=False, server_default=false()),
    # None: the default (physical MTU less the segment's overhead; dhcp_lease_time).
    _optional("mtu", Integer),
    _optional("dhcp_lease_time", Integer),
    # IPv6 beside IPv4 (None: IPv4 only): the network's /64, its gateway (the bridge's
    # address, advertised as the router) and how guests get their addresses (core.ipv6).
    _optional("cidr_v6", String(43)),
    _optional("gateway_v6", String(39)),
    _optional("ipv6_mode", String(16)),
    _required("created_at", DateTime, default=utcnow),
    CheckConstraint(MANAGER_CHECK, name="manager"),

    CheckConstraint("(manager = 'vlan') = (vlan IS NOT NULL)", name="vlan_only_for_vlan_manager"),
    CheckConstraint("manager = 'vlan' OR project_id IS NULL", name="flat_is_shared"),
)

Index("ix_networks_cidr_v6", networks.c.cidr_v6, unique=True)

# SSH public keys of a project, handed to its instances by the metadata service.
keys = Table(
    "keys",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("project_id", ForeignKey("projects.id", ondelete="CASCADE")),
    _required("name", String(63)),
    _required("public_key", Text),
    _required("fingerprint", String(64)),
    _required("created_at", DateTime, default=utcnow),
    UniqueConstraint("project_id", "name"),
)
Index("ix_keys_project_id_name_lower", keys.c.project_id, func.lower(keys.c.name), unique=True)

instances = Table(
    "instances",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("name", String(63), unique=True),
    _required("project_id", ForeignKey("projects.id", ondelete="RESTRICT")),
    _optional("host", String(255)),
    _required("created_at", DateTime, default=utcnow),
    # What cloud-init reads at /latest/user-data (text or gzip, at most 64 KiB).
    _optional("user_data", LargeBinary),
    _optional("key_id", ForeignKey("keys.id", ondelete="SET NULL")),
)
# An instance's name is its DHCP and DNS name, and those ignore case.
Index("ix_instances_name_lower", func.lower(instances.c.name), unique=True)

fixed_ips = Table(
    "fixed_ips",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("address", String(15), unique=True),
    _required("address_int", BigInteger),
    _required("network_id", ForeignKey("networks.id", ondelete="CASCADE")),
    _optional("instance_id", ForeignKey("instances.id", ondelete="SET NULL"), index=True),
    _optional("mac", String(17), unique=True),
    # The instance's IPv6 address on a dual-stack network, set with its MAC (core.ipv6).
    _optional("address_v6", String(39)),
    _flag("reserved"),
    _flag("allocated"),
    _flag("leased"),
    # When the instance let go of it; a lease still held then is waited for, up to a limit.
    _optional("released_at", DateTime),
    # On a multi-host network: the host whose gateway and DHCP address this is (kept
    # for that host, as nova-network kept fixed_ips.host, while it serves or not).
    _optional("host", String(255), index=True),
    Index("ix_fixed_ips_network_address", "network_id", "address_int"),
    Index("ix_fixed_ips_address_v6", "address_v6", unique=True),
)

# The pools floating IPs are in, by name: a pool exists while it holds addresses.
floating_pools = Table(
    "floating_pools",
    metadata,
    Column("name", String(63), primary_key=True),
)
Index("ix_floating_pools_name_lower", func.lower(floating_pools.c.name), unique=True)

floating_ips = Table(
    "floating_ips",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("address", String(15), unique=True),
    _required("address_int", BigInteger, unique=True),
    _required("pool", ForeignKey("floating_pools.name", ondelete="RESTRICT")),
    _required("host", String(255)),
    _required("interface", String(15)),
    _optional("project_id", ForeignKey("projects.id", ondelete="RESTRICT"), index=True),
    # One floating IP per fixed IP: the SNAT map needs one source for one target.
    _optional("fixed_ip_id", ForeignKey("fixed_ips.id", ondelete="RESTRICT"), unique=True),
    _flag("auto_assigned"),
    CheckConstraint(
        "fixed_ip_id IS NULL OR project_id IS NOT NULL", name="associated_is_allocated"
    ),
)

security_groups = Table(
    "security_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("project_id", ForeignKey("projects.id", ondelete="CASCADE")),
    _required("name", String(63)),
    _required("description", String(255), default=""),
    UniqueConstraint("project_id", "name"),
)
Index(
    "ix_security_groups_project_id_name_lower",
    security_groups.c.project_id,
    func.lower(security_groups.c.name),
    unique=True,
)

security_group_rules = Table(
    "security_group_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("group_id", ForeignKey("security_groups.id", ondelete="CASCADE")),
    _required("protocol", String(4)),
    # tcp/udp: a port range; icmp: type and code, -1 meaning any; any: -1 and -1.
    _required("from_port", Integer),
    _required("to_port", Integer),
    _optional("cidr", String(43)),
    _optional("source_group_id", ForeignKey("security_groups.id", ondelete="CASCADE"), index=True),
    # The family the rule judges (Neutron's ethertype); icmp on IPv6 means ICMPv6.
    _required("ethertype", String(4), default="IPv4", server_default="IPv4"),
    CheckConstraint("protocol IN ('tcp','udp','icmp','any')", name="protocol"),
    CheckConstraint("(cidr IS NULL) <> (source_group_id IS NULL)", name="one_source"),
    CheckConstraint("ethertype IN ('IPv4','IPv6')", name="ethertype"),
)

instance_security_groups = Table(
    "instance_security_groups",
    metadata,
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "security_group_id",
        ForeignKey("security_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # A group's members are read by group (the host's member sets, explain).
    Index("ix_instance_security_groups_security_group_id", "security_group_id"),
)

# The client configurations `vpn client-config` handed out: where each told its client
# to connect and which host's certificate authority signed it, so that one made before
# the network moved is known to be out of date.
vpn_clients = Table(
    "vpn_clients",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("project_id", ForeignKey("projects.id", ondelete="CASCADE")),
    _required("username", String(63)),
    _required("host", String(255)),
    _optional("address", String(15)),
    _required("port", Integer),
    _required("serial", String(40)),
    _required("issued_at", DateTime, default=utcnow),
    UniqueConstraint("project_id", "username"),
)

# Which host each change concerns, and what of it (network ids, floating addresses, as
# JSON lists): a host's agent applies the rows after the change it last applied, and the
# rows it has not applied are what is pending on it.
host_changes = Table(
    "host_changes",
    metadata,
    Column("change_id", BigInteger, primary_key=True),
    Column("host", String(255), primary_key=True),
    _required("networks", Text),
    _required("floating", Text),
    # The filter changed (instance ports or groups): it is compared whole, or, when
    # the change named its keys, only at the groups (a JSON list of ids) whose rules
    # changed and the instance ports (a JSON list of [MAC, fixed address]) that came,
    # went or changed groups.
    _required("security", Boolean, default=False, server_default=false()),
    _required("groups", Text, default="[]", server_default="[]"),
    _required("ports", Text, default="[]", server_default="[]"),
    # Project VPNs whose servers alone changed (a JSON list of project names).
    _required("vpns", Text, default="[]", server_default="[]"),
    Index("ix_host_changes_host_change", "host", "change_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("at", DateTime, default=utcnow, index=True),
    _required("actor", String(64)),
    _required("action", String(64)),
    _required("target", String(255)),
    _optional("before", Text),
    _optional("after", Text),
)


def add_partial_indexes() -> None:
    """Declare the two partial indexes of free addresses (for Alembic's comparisons).

    The migrations create them; queries name them where a planner needs telling. They
    are declared on request only because a ``postgresql_where`` makes SQLAlchemy import
    its PostgreSQL dialect, a fifth of a command's start-up.
    """
    if "ix_fixed_ips_free" in {index.name for index in fixed_ips.indexes}:
        return
    # Free addresses in address order: the allocation query walks only this index, so
    # its cost does not grow as the network fills up.
    free_fixed = (
        fixed_ips.c.instance_id.is_(None)
        & (fixed_ips.c.reserved == false())
        & (fixed_ips.c.leased == false())
    )
    Index(
        "ix_fixed_ips_free",
        fixed_ips.c.network_id,
        fixed_ips.c.address_int,
        sqlite_where=free_fixed,
        postgresql_where=free_fixed,
    )
    free_floating = floating_ips.c.project_id.is_(None)
    Index(
        "ix_floating_ips_free",
        floating_ips.c.pool,
        floating_ips.c.address_int,
        sqlite_where=free_floating,
        postgresql_where=free_floating,
    )
