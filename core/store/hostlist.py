"""The listing of network hosts, defined once: its SQL and how its rows become HostViews.

The service runs it through SQLAlchemy (the console's hosts view); `netcon host list`
runs the same SQL on a bare driver connection (:func:`read_hosts`), so that listing a
thousand hosts costs a process less than importing SQLAlchemy does. Nothing here
imports SQLAlchemy. The SQL is written for both SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from core.views import HostView

HOSTS = (
    "SELECT name, role, last_heartbeat, applied_change, applied_at, last_error, vpn_ip "
    "FROM hosts ORDER BY name"
)
NETWORKS = "SELECT host, count(id) FROM networks WHERE host IS NOT NULL GROUP BY host"
FLOATING = "SELECT host, count(id) FROM floating_ips GROUP BY host"
# Each host's instances on multi-host networks, which it serves itself.
SERVING = (
    "SELECT instances.host, count(DISTINCT instances.id) FROM instances "
    "JOIN fixed_ips ON fixed_ips.instance_id = instances.id "
    "JOIN networks ON networks.id = fixed_ips.network_id "
    "WHERE networks.multi_host AND instances.host IS NOT NULL GROUP BY instances.host"
)
# Changes a host has not applied yet: those after the last one it applied. This is what
# "pending" means wherever netcon shows it (`host list`, the console's header and hosts
# view): a count of changes, never of the operations a plan would make for them.
PENDING = (
    "SELECT host_changes.host, count(*) FROM host_changes "
    "LEFT OUTER JOIN hosts ON hosts.name = host_changes.host "
    "WHERE hosts.applied_change IS NULL OR host_changes.change_id > hosts.applied_change "
    "GROUP BY host_changes.host"
)

# Runs one statement and returns its rows.
Query = Callable[[str], Iterable[Sequence[Any]]]


def read_hosts(query: Query, now: datetime, down_time: int) -> list[HostView]:
    """Every host that has a row, a network, a floating IP, a multi-host instance or a
    pending change, by name; alive when its heartbeat is younger than ``down_time``
    seconds at ``now``. Run the five statements in one read transaction for a consistent
    picture."""
    known = {str(row[0]): row for row in query(HOSTS)}
    networks = {str(host): int(count) for host, count in query(NETWORKS)}
    floating = {str(host): int(count) for host, count in query(FLOATING) if host is not None}
    pending = pending_counts(query)
    serving = {str(host): int(count) for host, count in query(SERVING)}
    cutoff = now - timedelta(seconds=down_time)
    views = []
    for name in sorted(set(known) | set(networks) | set(floating) | set(pending) | set(serving)):
        row = known.get(name)
        beat = _time(row[2]) if row is not None else None
        views.append(
            HostView(
                name=name,
                role=str(row[1]) if row is not None else "network",
                last_heartbeat=beat,
                alive=beat is not None and beat >= cutoff,
                networks=networks.get(name, 0),
                floating_ips=floating.get(name, 0),
                pending=pending.get(name, 0),
                applied_change=int(row[3]) if row is not None and row[3] is not None else None,
                applied_at=_time(row[4]) if row is not None else None,
                last_error=row[5] if row is not None else None,
                vpn_ip=row[6] if row is not None else None,
                multi_host_instances=serving.get(name, 0),
            )
        )
    return views


def pending_counts(query: Query) -> dict[str, int]:
    """The changes each host has not applied yet, by host (hosts that owe none are left
    out): the one count of "pending" that every listing and the console show."""
    return {str(host): int(count) for host, count in query(PENDING)}


def _time(value: Any) -> datetime | None:
    # SQLite hands back the text SQLAlchemy stored ("2026-11-01 12:00:00.000000").
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
