"""The security-group plan without a kernel: elements, fallbacks, and nft's listings read back."""

from __future__ import annotations

import json

from core import secrules
from core.linux import nfttext
from core.linux.secgroups import tables as sg
from core.linux.secgroups.operations import (
    AddGroupRule,
    AddMember,
    AddRuleElement,
    CreateFilterTable,
    FilterOperation,
)
from core.linux.secgroups.plan import plan
from core.linux.secgroups.render import commands
from core.linux.secgroups.spec import (
    DesiredFilter,
    FilteredGroup,
    FilteredPort,
    GroupRule,
    SourceGroup,
)
from core.linux.secgroups.state import FilterState, TableState, parse_table

EMPTY = FilterState(TableState(), TableState())
# Both tables there but not in netcon's shape: made again, element by element.
MISSHAPEN = FilterState(TableState(exists=True), TableState(exists=True))


def _desired(*rules: GroupRule) -> DesiredFilter:
    port = FilteredPort("tapfa163e000001", "vm1", "fa:16:3e:00:00:01", "10.0.0.3", (5,))
    return DesiredFilter(
        ports=(port,),
        groups=(FilteredGroup(5, "alpha/web", rules),),
        dhcp_servers=("10.0.0.1",),
    )


def test_overlap_is_symmetric_and_exact() -> None:
    tcp22 = ("tcp", 22, 22, "10.0.0.0/8", None, "IPv4")
    assert secrules.overlap(tcp22, ("tcp", 20, 30, "10.1.0.0/16", None, "IPv4"))
    assert not secrules.overlap(tcp22, ("tcp", 23, 30, "10.1.0.0/16", None, "IPv4"))
    assert not secrules.overlap(tcp22, ("udp", 22, 22, "10.0.0.0/8", None, "IPv4"))
    assert secrules.overlap(tcp22, ("any", -1, -1, "0.0.0.0/0", None, "IPv4"))
    assert not secrules.overlap(tcp22, ("tcp", 22, 22, "192.168.0.0/16", None, "IPv4"))
    assert not secrules.overlap(tcp22, ("tcp", 22, 22, None, 3, "IPv4"))
    assert secrules.overlap(("icmp", 8, -1, None, 3, "IPv4"), ("icmp", -1, -1, None, 3, "IPv4"))
    assert not secrules.overlap(("icmp", 8, 0, None, 3, "IPv4"), ("icmp", 0, -1, None, 3, "IPv4"))
    # Two families never overlap; two IPv6 ranges do as IPv6 ranges.
    assert not secrules.overlap(("any", -1, -1, None, 3, "IPv4"), ("any", -1, -1, None, 3, "IPv6"))
    tcp22_v6 = ("tcp", 22, 22, "2001:db8::/32", None, "IPv6")
    assert secrules.overlap(tcp22_v6, ("tcp", 22, 22, "2001:db8:1::/48", None, "IPv6"))
    assert not secrules.overlap(tcp22_v6, ("tcp", 22, 22, "2001:db9::/32", None, "IPv6"))


def test_first_apply_is_one_operation_written_in_one_pass() -> None:
    problems: list[str] = []
    desired = _desired(GroupRule(1, "tcp", 22, 22, "10.0.0.0/8", None))
    ops = plan(desired, EMPTY, problems)
    assert problems == []
    assert [op.describe() for op in ops if isinstance(op, FilterOperation)] == [
        "make the security-group filter: 1 ports, 1 groups, 1 rules"
    ]
    (batch,) = commands(ops)
    lines = nfttext.command(batch).splitlines()
    # Each table once, as a block: each set with its elements inside, the maps too.
    assert [line for line in lines if line.startswith("table ")] == [
        "table bridge netcon {",
        "table inet netcon_groups {",
    ]
    assert '\tset ports { type ifname; elements = { "tapfa163e000001" }; }' in lines
    assert (
        "\tset g5-ports { type ipv4_addr . inet_proto . inet_service; "
        "flags interval; elements = { 10.0.0.0/8 . 6 . 22-22 }; }"
    ) in lines
    assert (
        f"\tmap {sg.INSTANCE_MAP} {{ type ipv4_addr : verdict; "
        "elements = { 10.0.0.3 : goto in-5 }; }"
    ) in lines
    chain = lines.index("\tchain g5 {")
    assert lines[chain + 1].startswith("\t\tip saddr . meta l4proto . th dport @g5-ports accept")


def test_misshapen_tables_are_made_again_element_by_element() -> None:
    ops = plan(_desired(GroupRule(1, "tcp", 22, 22, "10.0.0.0/8", None)), MISSHAPEN, [])
    assert [op for op in ops if isinstance(op, CreateFilterTable)] == [
        CreateFilterTable("bridge", "netcon", True),
        CreateFilterTable("inet", "netcon_groups", True),
    ]
    assert (
        AddRuleElement(5, "alpha/web", "ports", "10.0.0.0/8 . 6 . 22-22", "tcp 22 from 10.0.0.0/8")
        in ops
    )
    batch = commands(ops)
    names = [
        (c["add"]["element"]["family"], c["add"]["element"]["name"])
        for c in batch
        if "element" in c.get("add", {})
    ]
    # One command per set; the ports' map elements last (a port's link-local address too).
    assert len(names) == len(set(names))
    assert set(names[-2:]) == {("inet", sg.INSTANCE_MAP), ("inet", sg.INSTANCE_MAP6)}


def test_rules_an_interval_set_cannot_hold_become_chain_rules() -> None:
    """Overlapping CIDR rules (from before the service refused them) still load."""
    ops = plan(
        _desired(
            GroupRule(1, "tcp", 20, 30, "10.0.0.0/8", None),
            GroupRule(2, "tcp", 25, 35, "10.1.0.0/16", None),
            GroupRule(3, "udp", 25, 35, "10.1.0.0/16", None),
        ),
        MISSHAPEN,
        [],
    )
    elements = [op.element for op in ops if isinstance(op, AddRuleElement)]
    assert elements == ["10.0.0.0/8 . 6 . 20-30", "10.1.0.0/16 . 17 . 25-35"]
    (line,) = [op for op in ops if isinstance(op, AddGroupRule)]
    assert line.comment == "rule 2: tcp 25-35 from 10.1.0.0/16"


def test_listing_is_read_back_as_the_elements_netcon_wrote() -> None:
    listing = [
        {"table": {"family": "ip", "name": "netcon_groups"}},
        {
            "set": {
                "name": "g5-ports",
                "type": ["ipv4_addr", "inet_proto", "inet_service"],
                "flags": ["interval"],
                "elem": [
                    {"concat": [{"prefix": {"addr": "10.0.0.0", "len": 8}}, 6, 22]},
                    {"concat": ["1.2.3.4", 17, {"range": [1000, 2000]}]},
                ],
            }
        },
        {
            "set": {
                "name": "g5-icmp",
                "type": ["ipv4_addr", "icmp_type", "icmp_code"],
                "flags": ["interval"],
                "elem": [
                    {"concat": [{"prefix": {"addr": "0.0.0.0", "len": 0}}, 8, {"range": [0, 255]}]}
                ],
            }
        },
        {
            "map": {
                "name": "instance_in",
                "type": "ipv4_addr",
                "map": "verdict",
                "elem": [["10.0.0.3", {"goto": {"target": "in-5"}}]],
            }
        },
    ]
    state = parse_table(json.loads(json.dumps(listing)))
    assert state.sets["g5-ports"] == {"10.0.0.0/8 . 6 . 22-22", "1.2.3.4/32 . 17 . 1000-2000"}
    assert state.sets["g5-icmp"] == {"0.0.0.0/0 . 8-8 . 0-255"}
    assert state.targets == {"10.0.0.3": "in-5"}
    spec = sg.GROUP_SETS["ports"]
    assert sg.element_json("1.2.3.4/32 . 17 . 1000-2000", spec) == {
        "concat": [{"prefix": {"addr": "1.2.3.4", "len": 32}}, 17, {"range": [1000, 2000]}]
    }


def test_nothing_to_filter_and_no_tables_means_no_nft() -> None:
    assert plan(DesiredFilter(), EMPTY, []) == []
    problems: list[str] = []
    assert plan(_desired(), None, problems) == []
    assert problems == ["nft: program not found; install nftables (security groups need it)"]


def test_ipv6_rules_are_elements_of_the_groups_ipv6_sets() -> None:
    port = FilteredPort(
        "tapfa163e000001",
        "vm1",
        "fa:16:3e:00:00:01",
        "10.0.0.3",
        (5,),
        "2001:db8::f816:3eff:fe00:1",
    )
    desired = DesiredFilter(
        ports=(port,),
        groups=(
            FilteredGroup(
                5,
                "alpha/web",
                (
                    GroupRule(1, "tcp", 22, 22, "2001:db8:ff::/64", None, "IPv6"),
                    GroupRule(2, "icmp", 128, -1, "::/0", None, "IPv6"),
                    GroupRule(3, "any", -1, -1, None, 5, "IPv6"),
                    GroupRule(4, "tcp", 22, 22, "0.0.0.0/0", None, "IPv4"),
                ),
            ),
        ),
        sources=(
            SourceGroup(
                5, "alpha/web", (("10.0.0.3", "vm1"),), (("2001:db8::f816:3eff:fe00:1", "vm1"),)
            ),
        ),
    )
    ops = plan(desired, MISSHAPEN, [])
    elements = {(op.kind, op.element, op.words) for op in ops if isinstance(op, AddRuleElement)}
    assert elements == {
        ("ports6", "2001:db8:ff::/64 . 6 . 22-22", "tcp 22 from 2001:db8:ff::/64"),
        ("icmp6", "::/0 . 128-128 . 0-255", "icmpv6 type 128 from ::/0"),
        ("ports", "0.0.0.0/0 . 6 . 22-22", "tcp 22 from 0.0.0.0/0"),
    }
    (line,) = [op for op in ops if isinstance(op, AddGroupRule)]
    assert (line.source, line.family) == ("@m5-6", "IPv6")
    assert line.words == "any IPv6 protocol from members of alpha/web over IPv6"
    expr = sg.line_expr(line.source, line.protocol, line.from_port, line.to_port, line.family)
    assert expr[0] == {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "ip6", "field": "saddr"}},
            "right": "@m5-6",
        }
    }
    members = {(op.group_id, op.address) for op in ops if isinstance(op, AddMember)}
    assert members == {(5, "10.0.0.3"), (5, "2001:db8::f816:3eff:fe00:1")}
    # The port is judged at its IPv4 address and at both its IPv6 ones.
    batch = commands(ops)
    # Elements are handed over in nft's syntax: "KEY : goto CHAIN".
    keys = {
        (c["add"]["element"]["name"], str(e).partition(" : ")[0])
        for c in batch
        if c.get("add", {}).get("element", {}).get("name") in sg.INSTANCE_MAPS
        for e in c["add"]["element"]["elem"]
    }
    assert keys == {
        (sg.INSTANCE_MAP, "10.0.0.3"),
        (sg.INSTANCE_MAP6, "fe80::f816:3eff:fe00:1"),
        (sg.INSTANCE_MAP6, "2001:db8::f816:3eff:fe00:1"),
    }
    member_sets = {
        c["add"]["set"]["name"]: c["add"]["set"]["type"] for c in batch if "set" in c.get("add", {})
    }
    assert member_sets["m5"] == "ipv4_addr" and member_sets["m5-6"] == "ipv6_addr"
    assert member_sets["g5-icmp6"] == ["ipv6_addr", "icmpv6_type", "icmpv6_code"]
