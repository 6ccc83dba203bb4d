"""Lease events from dnsmasq, recorded on a bare driver connection.

dnsmasq runs its lease script once per event, and on a restart once per lease, so the
command it runs must start at once: it skips SQLAlchemy (see :mod:`core.store.raw`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from core import validate
from core.errors import InvalidInput
from core.store.raw import RawDatabase


def record_lease(
    database: RawDatabase, action: str, mac: str, address: str, actor: str, now: datetime
) -> int | None:
    """One transaction: the lease flag, and for a gone instance the address freed, with
    its audit record. Returns the network whose lease changed, or None for no change."""
    leased = action != "del"
    database.begin_write()
    try:
        rows = database.query(
            "SELECT id, mac, leased, instance_id, network_id FROM fixed_ips WHERE address = ?"
            + database.row_lock,
            (address,),
        )
        if not rows:
            raise InvalidInput("address", f"{address} is not a fixed IP of any network")
        fixed_id, have_mac, have_leased, instance_id, network_id = rows[0]
        # A lease for a MAC this address was not given to (a stale lease after the
        # address moved on) is not ours to record; neither is a repeat.
        if have_mac != mac or bool(have_leased) == leased:
            database.rollback()
            return None
        frees = not leased and instance_id is None
        database.execute(
            "UPDATE fixed_ips SET leased = ?, mac = ?, released_at = "
            + ("NULL, address_v6 = NULL" if frees else "released_at")
            + " WHERE id = ?",
            (leased, None if frees else mac, fixed_id),
        )
        database.execute(
            "INSERT INTO audit_events (at, actor, action, target, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                database.timestamp(now),
                actor,
                f"dhcp.{action}",
                address,
                json.dumps({"leased": bool(have_leased)}),
                json.dumps({"leased": leased, "mac": mac}, sort_keys=True),
            ),
        )
        database.commit()
    except BaseException:
        database.rollback()
        raise
    return int(network_id)


def record_spooled(
    database: RawDatabase, lines: Sequence[str], actor: str, now: datetime
) -> list[int]:
    """Lease events a lease script could not record when they came (``ACTION MAC IP``,
    oldest first), each in its own transaction as it would have been; returns the
    networks whose leases changed. A line that names no fixed IP, or is not an event, is
    left out: the event it stood for can no longer be recorded."""
    changed: list[int] = []
    for line in lines:
        words = line.split()
        if len(words) != 3 or words[0] not in ("add", "old", "del"):
            continue
        try:
            mac = validate.mac("mac", words[1])
            address = str(validate.ipv4_address("address", words[2]))
            network = record_lease(database, words[0], mac, address, actor, now)
        except InvalidInput:
            continue
        if network is not None:
            changed.append(network)
    return changed
