"""The groups table of the earlier layout, which judged packets at the forward and output
hooks, is found and rebuilt once in today's layout (one postrouting hook); after that a
plan has nothing to do."""

from __future__ import annotations

import dataclasses

from core.linux import nft
from core.linux.secgroups import render
from core.linux.secgroups import tables as sg
from core.linux.secgroups.observe import observe
from core.linux.secgroups.operations import CreateFilterTable
from core.linux.secgroups.plan import plan
from core.linux.secgroups.spec import DesiredFilter, FilteredGroup, FilteredPort, GroupRule
from core.linux.secgroups.state import FilterState, TableState
from tests.host.conftest import Lab, in_ns
from tests.host.rulesets import comparable_ruleset

DESIRED = DesiredFilter(
    ports=(
        FilteredPort("tapfa163e000001", "vm1", "fa:16:3e:00:00:01", "10.9.0.5", (5,)),
        FilteredPort("tapfa163e000002", "vm2", "fa:16:3e:00:00:02", "10.9.0.6", (5, 6)),
    ),
    groups=(
        FilteredGroup(5, "alpha/web", (GroupRule(1, "tcp", 80, 80, "0.0.0.0/0", None),)),
        FilteredGroup(6, "alpha/db", (GroupRule(2, "udp", 53, 53, "192.0.2.0/24", None),)),
    ),
    dhcp_servers=("10.9.0.1",),
)

# The base chains of the earlier layout: the same three rules at two hooks.
_EARLIER_HOOKS = "; ".join(
    line
    for hook in ("forward", "output")
    for line in (
        f"add chain inet netcon_groups {hook} "
        f"{{ type filter hook {hook} priority 0; policy accept; }}",
        f'add rule inet netcon_groups {hook} ct state established,related accept comment "replies"',
        f'add rule inet netcon_groups {hook} ip daddr vmap @instance_in comment "instances"',
        f"add rule inet netcon_groups {hook} ip6 daddr vmap @instance_in6 "
        'comment "instances over IPv6"',
    )
)


def _observed(lab: Lab, ns: str) -> FilterState:
    found = observe("nft", ns, lab.state_dir, needed=True, may_change=False)
    assert found is not None and found.groups.exists
    return dataclasses.replace(found, bridge_netfilter=True)


def test_the_earlier_two_hook_layout_is_rebuilt_once(lab: Lab) -> None:
    earlier, fresh = lab.netns("earlier"), lab.netns("fresh")
    empty = FilterState(TableState(), TableState(), True)
    for ns in (earlier, fresh):
        nft.Nft("nft", ns).run(render.commands(plan(DESIRED, empty, [])))
    in_ns(earlier, "nft", "delete chain inet netcon_groups postrouting")
    in_ns(earlier, "nft", _EARLIER_HOOKS)
    chains = in_ns(earlier, "nft", "list", "chains", "inet").stdout
    assert "hook forward" in chains and "hook postrouting" not in chains

    ops = plan(DESIRED, _observed(lab, earlier), [])
    assert CreateFilterTable(*sg.GROUPS, replace=True) in ops
    assert CreateFilterTable(*sg.BRIDGE, replace=True) not in ops
    nft.Nft("nft", earlier).run(render.commands(ops))

    assert comparable_ruleset(earlier) == comparable_ruleset(fresh)
    assert plan(DESIRED, _observed(lab, earlier), []) == []
