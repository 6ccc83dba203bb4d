"""The one writer of the metadata service's host state: both families' DNAT tables in
one nft batch (their layout is spec's), with fe80::a9fe:a9fe on the bridges around it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.linux import nfttable
from core.linux.metadata import address
from core.linux.metadata.operations import MetadataAddress6, MetadataTableOperation
from core.linux.netlink import Netlink


def apply(
    ops: Sequence[object], link: Netlink, nft_binary: str, netns: str | None, state_dir: Path
) -> None:
    """The plan's metadata changes. An address goes before the batch and comes after it:
    while the bridge has it, the IPv6 table's guard against adverts from it is there."""
    addresses = [op for op in ops if isinstance(op, MetadataAddress6)]
    address.apply([op for op in addresses if not op.add], link)
    changes = [op for op in ops if isinstance(op, MetadataTableOperation)]
    nfttable.apply(changes, nft_binary, netns, state_dir, "metadata DNAT")
    address.apply([op for op in addresses if op.add], link)


def table_text(ops: Sequence[object]) -> str:
    """The nft script of the plan's table changes (empty: none)."""
    return nfttable.script([op for op in ops if isinstance(op, MetadataTableOperation)])
