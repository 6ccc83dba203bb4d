"""The metadata service over IPv6: guests ask ``http://[fe80::a9fe:a9fe%eth0]/`` as on
OpenStack. Each dual-stack bridge carries that link-local address (planner.py); a DNAT
in the table ``ip6 netcon_metadata6`` sends port 80 there to the server's port, where
the server listens on IPv6 beside IPv4. The arrival interface of a link-local peer
names the bridge, and the peer's address the MAC it was formed from (anti-spoofing lets
a port send from no other link-local address): together, the instance.

The table's content follows from the server's port alone: it is made whole, remade when
the port differs, and removed with the last network the server serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import HostError
from core.linux import nft
from core.linux.ipv6_host import METADATA
from core.linux.operations import Operation

FAMILY = "ip6"
TABLE = "netcon_metadata6"


@dataclass(frozen=True)
class CreateMetadata6Table(Operation):
    port: int
    replace: bool
    marker: Path

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return f"{verb} nftables table {FAMILY} {TABLE} (DNAT of [{METADATA}]:80 for guests)"


@dataclass(frozen=True)
class DeleteMetadata6Table(Operation):
    marker: Path

    def describe(self) -> str:
        return f"delete nftables table {FAMILY} {TABLE}"


def observe(nft_binary: str, netns: str | None, marker: Path, *, wanted: bool) -> int | None:
    """The server port the table sends guests to: None when there is no table (or it was
    not looked for: neither wanted nor made here), -1 when it is not laid out as made
    here (then it is remade)."""
    if not wanted and not marker.exists():
        return None
    (result,) = nft.listings(nft_binary, netns, [f"list table {FAMILY} {TABLE}"], numeric=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return None
        raise HostError(f"nft: cannot read table {FAMILY} {TABLE}: {result.stderr.strip()}")
    try:
        objects = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError):
        raise HostError(f"nft: unreadable listing of table {FAMILY} {TABLE}") from None
    rules = [o["rule"] for o in objects if "rule" in o]
    ports = [
        e["dnat"].get("port")
        for r in rules
        if r.get("chain") == "prerouting"
        for e in r.get("expr", [])
        if "dnat" in e
    ]
    if len(rules) != 3 or len(ports) != 1 or not isinstance(ports[0], int):
        return -1  # not the layout made here: remade
    return ports[0]


def plan(port: int, serving: bool, have: int | None, marker: Path) -> list[Operation]:
    """``have``: what observe() found."""
    if not serving:
        return [DeleteMetadata6Table(marker)] if have is not None else []
    if have == port:
        return []
    return [CreateMetadata6Table(port, have is not None, marker)]


def table_text(ops: list[Operation]) -> str:
    lines: list[str] = []
    table = f"{FAMILY} {TABLE}"
    for op in ops:
        if isinstance(op, DeleteMetadata6Table):
            lines.append(f"delete table {table}")
        elif isinstance(op, CreateMetadata6Table):
            if op.replace:
                lines.append(f"delete table {table}")
            lines += [
                f"add table {table}",
                f"add chain {table} prerouting "
                "{ type nat hook prerouting priority -100; policy accept; }",
                f"add rule {table} prerouting ip6 daddr {METADATA} tcp dport 80 "
                f"dnat to [{METADATA}]:{op.port}",
                f"add chain {table} input {{ type filter hook input priority 0; policy accept; }}",
                # Only connections the DNAT made, or the host's own, reach the server.
                f"add rule {table} input tcp dport {op.port} ct status dnat accept",
                f'add rule {table} input tcp dport {op.port} iifname != "lo" drop',
            ]
    return "".join(line + "\n" for line in lines)


def mark(ops: list[Operation]) -> None:
    """Note whether the table is made here, so a host that never needed it is not
    asked about it (an nft process) on every apply."""
    for op in ops:
        if isinstance(op, CreateMetadata6Table):
            op.marker.parent.mkdir(parents=True, exist_ok=True)
            op.marker.touch()
        elif isinstance(op, DeleteMetadata6Table):
            op.marker.unlink(missing_ok=True)
