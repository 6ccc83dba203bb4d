"""Where a project VPN's clients must connect now, and which of the client
configurations handed out still say so.

A VPN answers at the address of its network's host: that host's own ``vpn_ip``, which
each host records when it heartbeats (this host's is read from its settings). A network
that moves (its first launch elsewhere, ``network modify --host``, an evacuation) takes
its VPN to the new host's address and certificate authority, so every configuration
made before the move names an address, or a CA, the VPN no longer has: it is out of date
and must be issued again (``vpn client-config`` on the new host).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select

from core.config import Settings
from core.store.schema import hosts, vpn_clients


@dataclass(frozen=True)
class Endpoint:
    """Where the VPN of one network answers: its host, that host's address, the port."""

    host: str | None
    address: str | None
    port: int | None

    @property
    def text(self) -> str:
        return f"{self.address or '*'}:{self.port}"


def host_addresses(connection: Connection, settings: Settings) -> dict[str, str | None]:
    """Every host's VPN address as it last said it; this host's from its own settings."""
    found: dict[str, str | None] = {
        name: address for name, address in connection.execute(select(hosts.c.name, hosts.c.vpn_ip))
    }
    found[settings.host] = settings.vpn_ip
    return found


def endpoint(network: Row[Any], addresses: dict[str, str | None]) -> Endpoint:
    host = network.host
    return Endpoint(
        host, addresses.get(host) if host is not None else None, network.vpn_public_port
    )


def record_issue(
    connection: Connection,
    project_id: int,
    user: str,
    made_for: Endpoint,
    serial: str,
    now: datetime,
) -> None:
    """The user's configuration now says ``made_for``: the one record of it, replaced."""
    forget(connection, project_id, user)
    connection.execute(
        insert(vpn_clients).values(
            project_id=project_id,
            username=user,
            host=made_for.host,
            address=made_for.address,
            port=made_for.port,
            serial=serial,
            issued_at=now,
        )
    )


def forget(connection: Connection, project_id: int, user: str) -> None:
    connection.execute(
        delete(vpn_clients).where(
            vpn_clients.c.project_id == project_id, vpn_clients.c.username == user
        )
    )


def issued(connection: Connection, project_ids: Iterable[int]) -> list[Row[Any]]:
    """The configurations handed out to the users of these projects, by user."""
    ids = sorted(set(project_ids))
    if not ids:
        return []
    return list(
        connection.execute(
            select(vpn_clients)
            .where(vpn_clients.c.project_id.in_(ids))
            .order_by(vpn_clients.c.project_id, vpn_clients.c.username)
        )
    )


def made_for(record: Row[Any]) -> Endpoint:
    return Endpoint(record.host, record.address, record.port)


def out_of_date(record: Row[Any], now: Endpoint) -> bool:
    """Whether a configuration no longer reaches the VPN: another address or port, or
    another host (whose certificate authority did not sign it). A network with no host
    yet has nowhere to compare with."""
    if now.host is None:
        return False
    return (record.host, record.address, record.port) != (now.host, now.address, now.port)
