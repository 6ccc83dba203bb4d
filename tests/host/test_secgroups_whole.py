"""The filter's first apply, written whole in one pass, leaves the kernel holding exactly
what the element-by-element plan makes, and a plan after it has nothing to do."""

from __future__ import annotations

import dataclasses

from core.linux import nft
from core.linux.secgroups import render
from core.linux.secgroups.observe import observe
from core.linux.secgroups.operations import CreateFilterTable, FilterOperation
from core.linux.secgroups.plan import plan
from core.linux.secgroups.spec import (
    DesiredFilter,
    FilteredGroup,
    FilteredPort,
    GroupRule,
    SourceGroup,
)
from core.linux.secgroups.state import FilterState, TableState
from core.linux.secgroups.whole import CreateWholeFilter
from tests.host.conftest import Lab, in_ns
from tests.host.rulesets import comparable_ruleset

V6 = "2001:db8::f816:3eff:fe00:2"
DESIRED = DesiredFilter(
    ports=(
        FilteredPort("tapfa163e000002", "vm2", "fa:16:3e:00:00:02", "10.9.0.6", (5, 6), V6),
        FilteredPort("tapfa163e000001", "vm1", "fa:16:3e:00:00:01", "10.9.0.5", (5,)),
        FilteredPort("tapfa163e000003", "vm3", "fa:16:3e:00:00:03", "10.9.0.7", ()),
    ),
    groups=(
        FilteredGroup(
            5,
            "alpha/web",
            (
                GroupRule(1, "tcp", 80, 80, "0.0.0.0/0", None),
                # Overlaps rule 1 in its set: a chain rule.
                GroupRule(2, "tcp", 70, 90, "10.0.0.0/8", None),
                GroupRule(3, "icmp", 8, -1, "10.0.0.0/8", None),
                GroupRule(4, "any", -1, -1, None, 6),
                GroupRule(5, "tcp", 22, 22, "2001:db8::/32", None, "IPv6"),
                GroupRule(6, "any", -1, -1, None, 6, "IPv6"),
            ),
        ),
        FilteredGroup(6, "alpha/db", (GroupRule(7, "udp", 53, 53, "192.0.2.0/24", None),)),
    ),
    sources=(SourceGroup(6, "alpha/db", (("10.9.0.6", "vm2"),), ((V6, "vm2"),)),),
    dhcp_servers=("10.9.0.1",),
)


def test_first_apply_in_one_pass_makes_what_the_element_plan_makes(lab: Lab) -> None:
    whole, by_element = lab.netns("whole"), lab.netns("elements")
    empty = FilterState(TableState(), TableState(), True)
    ops = plan(DESIRED, empty, [])
    assert [op.describe() for op in ops] == [
        "make the security-group filter: 3 ports, 2 groups, 7 rules"
    ]
    assert isinstance(ops[0], CreateWholeFilter)
    nft.Nft("nft", whole).run(render.commands(ops))

    # The element-by-element plan, from tables that are there but empty.
    in_ns(by_element, "nft", "add table bridge netcon; add table inet netcon_groups")
    there = FilterState(TableState(exists=True), TableState(exists=True), True)
    element_ops = plan(DESIRED, there, [])
    assert len([op for op in element_ops if isinstance(op, CreateFilterTable)]) == 2
    assert len([op for op in element_ops if isinstance(op, FilterOperation)]) > 10
    nft.Nft("nft", by_element).run(render.commands(element_ops))

    made = comparable_ruleset(whole)
    assert made == comparable_ruleset(by_element)
    assert any("elem" in next(iter(item.values())) for item in made)

    observed = observe("nft", whole, lab.state_dir, needed=True, may_change=False)
    assert observed is not None and observed.bridge.exists
    again = plan(DESIRED, dataclasses.replace(observed, bridge_netfilter=True), [])
    assert again == []
