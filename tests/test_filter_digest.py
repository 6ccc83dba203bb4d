"""The digest that lets a no-change apply skip listing the filter: the same for the same
desired filter in every process (string hashes are salted per process), different as
soon as one port, rule or member differs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

from core.linux.closedports import OpenPorts
from core.linux.secgroups import record
from core.linux.secgroups.spec import (
    DesiredFilter,
    FilteredGroup,
    FilteredPort,
    GroupRule,
    SourceGroup,
)

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = """
from core.linux.secgroups import record
from tests.test_filter_digest import desired, opened
print(record.digest(desired(), opened()))
"""


def desired() -> DesiredFilter:
    ports = tuple(
        FilteredPort(f"tap{i:04d}", f"vm{i}", f"fa:16:3e:00:00:{i:02x}", f"10.0.0.{i}", (5, 7))
        for i in range(2, 40)
    )
    rules = (
        GroupRule(1, "tcp", 22, 22, "10.0.0.0/8", None),
        GroupRule(2, "udp", 53, 53, None, 7),
        GroupRule(3, "icmp", -1, -1, "::/0", None, "IPv6"),
    )
    members = tuple((p.address, p.instance) for p in ports)
    return DesiredFilter(
        ports=ports,
        groups=(FilteredGroup(5, "alpha/web", rules), FilteredGroup(7, "alpha/db", ())),
        sources=(SourceGroup(7, "alpha/db", members),),
        dhcp_servers=("10.0.0.1",),
    )


def opened() -> OpenPorts:
    return OpenPorts(frozenset({"vx100", "br100"}), frozenset({"eth9"}), frozenset(), True, True)


def test_the_digest_is_the_same_in_another_process() -> None:
    here = record.digest(desired(), opened())
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", PROGRAM],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip() == here


def test_the_digest_changes_with_any_part_of_the_filter() -> None:
    base = desired()
    open_sets = opened()
    digests = {record.digest(base, open_sets)}
    port = base.ports[3]
    changed = [
        replace(base, ports=(*base.ports[:3], replace(port, groups=(5,)), *base.ports[4:])),
        replace(base, ports=base.ports[:-1]),
        replace(base, groups=(replace(base.groups[0], rules=base.groups[0].rules[:2]),)),
        replace(base, sources=(replace(base.sources[0], members=base.sources[0].members[1:]),)),
        replace(base, dhcp_servers=("10.0.0.254",)),
    ]
    for other in changed:
        digests.add(record.digest(other, open_sets))
    digests.add(record.digest(base, replace(open_sets, trusted=frozenset({"eth8"}))))
    assert len(digests) == len(changed) + 2


def _other(value: object) -> object:
    """A different value of the same kind as ``value``."""
    if isinstance(value, bool) or value is None:
        return "changed"
    if isinstance(value, int):
        return value + 1000
    if isinstance(value, str):
        return value + "x"
    assert isinstance(value, tuple)
    return value[1:] if value else (1,)


def test_the_digest_changes_with_every_field_of_every_part() -> None:
    """A field added to a port, group, rule or source group is digested too."""
    base = desired()
    open_sets = opened()
    seen = {record.digest(base, open_sets)}
    expected = 1
    port, group, source = base.ports[0], base.groups[0], base.sources[0]
    rule = group.rules[0]
    for name in (f.name for f in fields(FilteredPort)):
        other = replace(port, **{name: _other(getattr(port, name))})
        seen.add(record.digest(replace(base, ports=(other, *base.ports[1:])), open_sets))
        expected += 1
    for name in (f.name for f in fields(GroupRule)):
        other_rule = replace(rule, **{name: _other(getattr(rule, name))})
        other_group = replace(group, rules=(other_rule, *group.rules[1:]))
        seen.add(record.digest(replace(base, groups=(other_group, *base.groups[1:])), open_sets))
        expected += 1
    for name in (f.name for f in fields(FilteredGroup)):
        if name == "rules":
            continue  # each field of a rule, above
        other_group = replace(group, **{name: _other(getattr(group, name))})
        seen.add(record.digest(replace(base, groups=(other_group, *base.groups[1:])), open_sets))
        expected += 1
    for name in (f.name for f in fields(SourceGroup)):
        other_source = replace(source, **{name: _other(getattr(source, name))})
        seen.add(record.digest(replace(base, sources=(other_source,)), open_sets))
        expected += 1
    assert len(seen) == expected
