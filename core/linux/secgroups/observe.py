"""Observing the security-group tables for a full plan: which exist, and then their
listing, unless the kernel's ruleset generation says they are what the last apply left
(record.py)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import HostError
from core.linux import dnsmasq, sysctl
from core.linux.secgroups import record
from core.linux.secgroups import tables as sg
from core.linux.secgroups.state import FilterState, TableState, read_tables

if TYPE_CHECKING:
    from core.linux.nftelements import Lookup

MARKER = "filter-tables"


def marker(state_dir: Path) -> Path:
    """Present once netcon has made its filter tables in this namespace."""
    return state_dir / MARKER


def observe(
    binary: str,
    netns: str | None,
    state_dir: Path,
    *,
    needed: bool,
    may_change: bool,
    lookup: Callable[[], Lookup] | None = None,
    generation: int | None = None,
) -> FilterState | None:
    """The two tables, or None when nft is missing (or, without CAP_NET_ADMIN, unreadable:
    then ``FilterState.readable`` is False). With ``lookup``, the kernel is first asked
    which of them exist, and only those are listed: on a first apply, nothing is.

    ``generation``: the kernel's ruleset generation, read before anything else; when it
    is the one recorded after the last apply, nothing is listed (record.py)."""
    if not needed and not marker(state_dir).exists():
        return FilterState(TableState(), TableState())
    if not dnsmasq.find_binary(binary):
        return None
    recorded = record.read(state_dir) if generation is not None else None
    if recorded is not None and recorded.generation == generation:
        return record.VouchedState(
            TableState(),
            TableState(),
            sysctl.read_bridge_netfilter(netns),
            digest=recorded.digest,
            listing=functools.partial(
                observe,
                binary,
                netns,
                state_dir,
                needed=needed,
                may_change=may_change,
                lookup=lookup,
            ),
        )
    # The IPv4-only groups table of earlier versions is looked for too, to be replaced.
    tables = (*sg.TABLES, sg.OLD_GROUPS)
    present = dict.fromkeys(tables, True)
    if lookup is not None:
        with contextlib.suppress(HostError):  # then listing them says why
            present = lookup().tables_present(tables)
    listed = [table for table in tables if present[table]]
    try:
        states = dict(zip(listed, read_tables(binary, netns, listed), strict=True))
    except HostError:
        if may_change:
            raise
        return FilterState(TableState(), TableState(), readable=False)
    return FilterState(
        states.get(sg.BRIDGE, TableState()),
        states.get(sg.GROUPS, TableState()),
        sysctl.read_bridge_netfilter(netns),
        old_groups=states.get(sg.OLD_GROUPS, TableState()).exists,
    )
