"""The DNAT table ``ip netcon_metadata`` as one nft script of the plan's table operations."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import HostError
from core.linux import namespace
from core.linux.metadata.operations import (
    CreateMetadataTable,
    DeleteMetadataRoute,
    DeleteMetadataTable,
    SetMetadataPort,
    SetMetadataRoute,
)
from core.linux.metadata.spec import ADDRESS, FAMILY, PORTS, ROUTES, TABLE, table_marker


def apply(ops: Sequence[object], nft_binary: str, netns: str | None) -> None:
    """The table's changes as one nft batch, and its marker made or removed with it."""
    text = table_text(ops)
    if not text:
        return
    result = namespace.run(netns, [nft_binary, "-f", "-"], stdin=text)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise HostError(f"nft: metadata DNAT: {lines[0] if lines else 'failed'}")
    for op in ops:
        if isinstance(op, CreateMetadataTable):
            op.files.directory.mkdir(parents=True, exist_ok=True)
            table_marker(op.files).touch()
        elif isinstance(op, DeleteMetadataTable):
            table_marker(op.files).unlink(missing_ok=True)


def table_text(ops: Sequence[object]) -> str:
    """The nft script for the plan's table operations (empty: none)."""
    lines: list[str] = []
    table = f"{FAMILY} {TABLE}"
    for op in ops:
        if isinstance(op, DeleteMetadataTable):
            lines.append(f"delete table {table}")
        elif isinstance(op, CreateMetadataTable):
            if op.replace:
                lines.append(f"delete table {table}")
            lines += [
                f"add table {table}",
                f"add map {table} {ROUTES} {{ type ifname : ipv4_addr . inet_service; }}",
                f"add set {table} {PORTS} {{ type inet_service; }}",
                f"add chain {table} prerouting "
                "{ type nat hook prerouting priority -100; policy accept; }",
                f"add rule {table} prerouting ip daddr {ADDRESS} tcp dport 80 "
                f"dnat ip to iifname map @{ROUTES}",
                f"add chain {table} input {{ type filter hook input priority 0; policy accept; }}",
                # Only connections the DNAT made, or the host's own, reach the server.
                f"add rule {table} input tcp dport @{PORTS} ct status dnat accept",
                f'add rule {table} input tcp dport @{PORTS} iifname != "lo" drop',
            ]
        elif isinstance(op, SetMetadataRoute):
            if op.replaces:  # 'add' would keep an element's old value
                lines.append(f'delete element {table} {ROUTES} {{ "{op.bridge}" }}')
            lines.append(
                f'add element {table} {ROUTES} {{ "{op.bridge}" : {op.gateway} . {op.port} }}'
            )
        elif isinstance(op, DeleteMetadataRoute):
            lines.append(f'delete element {table} {ROUTES} {{ "{op.bridge}" }}')
        elif isinstance(op, SetMetadataPort):
            verb = "add" if op.add else "delete"
            lines.append(f"{verb} element {table} {PORTS} {{ {op.port} }}")
    return "".join(line + "\n" for line in lines)
