"""A batch of add commands said again in nft's block syntax: each table once, sets and
maps with their elements, chains with their rules in order; any other line refused."""

from __future__ import annotations

import pytest

from core.linux.nftblocks import as_blocks
from core.linux.nfttext import UnknownShape

LINES = [
    "add table inet t",
    "add set inet t s { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 }; }",
    "add map inet t m { type ipv4_addr : verdict; }",
    "add chain inet t c",
    "add chain inet t f { type filter hook forward priority 0; policy accept; }",
    'add rule inet t f ip daddr vmap @m comment "instances"',
    "add rule inet t c ip saddr @s accept",
    "add rule inet t c drop",
    "add table bridge b",
    "add set bridge b p { type ifname; }",
    "add element inet t m { 10.0.0.3 : goto c, 10.0.0.4 : goto c }",
]


def test_each_table_is_one_block_with_its_sets_then_its_chains() -> None:
    assert as_blocks(LINES).splitlines() == [
        "table inet t {",
        "\tset s { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 }; }",
        "\tmap m { type ipv4_addr : verdict; "
        "elements = { 10.0.0.3 : goto c, 10.0.0.4 : goto c }; }",
        "\tchain c {",
        "\t\tip saddr @s accept",
        "\t\tdrop",
        "\t}",
        "\tchain f {",
        "\t\ttype filter hook forward priority 0; policy accept;",
        '\t\tip daddr vmap @m comment "instances"',
        "\t}",
        "}",
        "table bridge b {",
        "\tset p { type ifname; }",
        "}",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "delete table inet t",
        "flush chain inet t c",
        "add rule inet t nowhere drop",
        "add element inet t nowhere { 10.0.0.1 }",
        "add element inet t s { 10.0.0.1 }",  # its elements are inline already
        "add set inet other s { type ipv4_addr; }",
        "add set inet t s2 type ipv4_addr",
    ],
)
def test_a_line_a_block_cannot_hold_is_refused(line: str) -> None:
    with pytest.raises(UnknownShape):
        as_blocks([*LINES, line])
