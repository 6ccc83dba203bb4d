"""The listing of networks, defined once: its SQL and how its rows become NetworkViews.

The service runs it through SQLAlchemy (`network list`, `show`, the console's views).
The console's first screen is this listing; :func:`read_networks` runs the same SQL on a
bare driver connection so that the first rows are drawn before SQLAlchemy (a quarter of
a second to import) is loaded. Nothing here imports SQLAlchemy.

The SQL is written for both SQLite and PostgreSQL, with ``:name`` parameters (what
SQLAlchemy's ``text()`` and :mod:`sqlite3` both take).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.managers.capabilities import capabilities, kinds
from core.managers.mtu import own_or_physical_mtu
from core.store.rules import HEAD_REVISION, SQLITE_HEADER, sqlite_uri, writable
from core.views import NetworkView

# A lean read that finds the database busy gives way to the service rather than wait.
_BUSY_SECONDS = 1.0


# A NetworkView's address counts come from fixed_ips; every other field is the networks
# column of its name, but the project, shown by its name, and the VPN's public address,
# which is the address its network's host says VPN clients reach it at. The view's fields
# are the one list of what the listing reads.
_COUNTED = ("size", "used", "reserved", "free")
_STORED = tuple(name for name in NetworkView._fields if name not in _COUNTED)
# Only the managers whose networks run a VPN have a VPN address (quoted: the kinds are
# fixed words of netcon's own, never input).
_VPN_KINDS = ", ".join(f"'{kind}'" for kind in kinds(runs_vpn=True))
_JOINED = {
    "project": "projects.name",
    "vpn_public_address": f"CASE WHEN networks.manager IN ({_VPN_KINDS}) THEN hosts.vpn_ip END",
}
_COLUMNS = ", ".join(_JOINED.get(name, f"networks.{name}") for name in _STORED)


def networks_sql(where: str = "") -> str:
    """The networks ``where`` selects (all when empty), with their projects' names and
    their hosts' VPN addresses, in address order."""
    return (
        f"SELECT {_COLUMNS} FROM networks "
        "LEFT OUTER JOIN projects ON networks.project_id = projects.id "
        "LEFT OUTER JOIN hosts ON hosts.name = networks.host"
        + (f" WHERE {where}" if where else "")
        + " ORDER BY networks.first_int"
    )


def counts_sql(where: str = "") -> str:
    """Per network that ``where`` selects: all its addresses, the reserved ones, and those
    in use by an instance or still leased."""
    within = f" WHERE network_id IN (SELECT networks.id FROM networks WHERE {where})"
    return (
        "SELECT network_id, count(*), "
        "sum(CASE WHEN reserved THEN 1 ELSE 0 END), "
        "sum(CASE WHEN instance_id IS NOT NULL OR leased THEN 1 ELSE 0 END) "
        "FROM fixed_ips" + (within if where else "") + " GROUP BY network_id"
    )


def network_views(
    rows: Iterable[Sequence[Any]], counts: Iterable[Sequence[Any]], physical_mtu: int
) -> list[NetworkView]:
    """NetworkViews from the rows of :func:`networks_sql` and :func:`counts_sql`."""
    totals = {
        int(network_id): (int(total), int(reserved or 0), int(used or 0))
        for network_id, total, reserved, used in counts
    }
    return [_view(row, totals, physical_mtu) for row in rows]


def _view(
    row: Sequence[Any], totals: dict[int, tuple[int, int, int]], physical_mtu: int
) -> NetworkView:
    stored = dict(zip(_STORED, row, strict=True))
    total, reserved, used = totals.get(stored["id"], (0, 0, 0))
    stored["multi_host"] = bool(stored["multi_host"])  # SQLite stores 0 or 1
    if capabilities(stored["manager"]).serves_dhcp:
        # The MTU DHCP hands guests; a network without DHCP here has only its own.
        stored["mtu"] = own_or_physical_mtu(stored["mtu"], stored["segmentation"], physical_mtu)
    return NetworkView(
        **stored, size=total, used=used, reserved=reserved, free=total - reserved - used
    )


# -- the lean read --------------------------------------------------------------------


@dataclass(frozen=True)
class LeanListing:
    """Every network, read without the service, and what was learnt on the way."""

    networks: list[NetworkView]
    url: str  # as the service shows it (no password: SQLite URLs carry none)
    writable: bool  # whether this process may change the database


def sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL, read as SQLAlchemy reads it; None for
    any other URL (PostgreSQL, a driver name, a query, quoting): the service opens those."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    rest = url[len(prefix) :]
    if not rest or any(c in rest for c in "%?#:@"):
        return None
    return Path(rest)


def read_networks(url: str, physical_mtu: int) -> LeanListing | None:
    """The networks listing, read on a bare driver connection in one read transaction.

    Only when the service would open the database as it is: an SQLite file this process
    can read, with netcon's schema at this netcon's revision. Anything else (missing,
    foreign, damaged, behind or ahead of this netcon, busy, PostgreSQL) gives None, and
    the caller opens the service, which refuses, creates or migrates as it always does.
    """
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        with path.open("rb") as file:
            if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                return None
    except OSError:
        return None
    can_write = writable(path)
    # mode=rw never creates a file (rwc would, were it removed meanwhile).
    uri = f"file:{quote(str(path))}?mode=rw" if can_write else sqlite_uri(path, True)
    try:
        connection = sqlite3.connect(
            uri, uri=True, isolation_level=None, timeout=_BUSY_SECONDS
        )
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN")
        stored = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        if stored is None or stored[0] != HEAD_REVISION:
            return None
        rows = connection.execute(networks_sql()).fetchall()
        counts = connection.execute(counts_sql()).fetchall()
        connection.execute("COMMIT")
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return LeanListing(network_views(rows, counts, physical_mtu), url, can_write)
