"""The whole security-group filter of a host as read from the database (plain SQL on the
read's own cursor): the host's ports with their groups, the rules of those groups, the
members of the groups the rules cite (wherever they run), and the DHCP servers of the
ports' networks; the same on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.desired.secgroups import read_filter
from core.linux.ports import port_name
from core.linux.secgroups.spec import DesiredFilter, GroupRule
from core.service import NetconService
from tests.support import make_service

CIDR = "10.70.0.0/24"


def _build(service: NetconService) -> None:
    for name in ("h1", "h2"):
        service.heartbeat(name)
    service.create_networks(CIDR, manager="flatdhcp", bridge="brmh", multi_host=True)
    service.create_project("ops", "flatdhcp")
    service.create_security_group("ops", "web")
    service.create_security_group("ops", "db")
    service.create_security_group("ops", "idle")
    service.add_security_group_rule("ops", "web", "tcp", 80, 81, cidr="0.0.0.0/0")
    service.add_security_group_rule("ops", "db", "tcp", 5432, None, source_group="web")
    service.add_security_group_rule("ops", "db", "icmp", 8, -1, source_group="db")
    service.launch_instance("ops", "a1", ["web"], host="h1")
    service.launch_instance("ops", "a2", ["web", "db"], host="h2")
    service.launch_instance("ops", "a3", host="h2")  # in the project's default group
    service.launch_instance("ops", "a4", ["idle"], host="h1")


def _read(service: NetconService, host: str) -> DesiredFilter:
    with service.db.read() as connection:
        return read_filter(connection, host)


def _check(service: NetconService) -> DesiredFilter:
    h2 = _read(service, "h2")
    fixed = {f.instance: f for f in service.list_fixed_ips().rows if f.instance}
    own = {str(f.host): f.address for f in service.list_fixed_ips().rows if f.host is not None}
    groups = {g.name: g for g in service.list_security_groups("ops")}
    web, db, default = (groups[name].id for name in ("web", "db", "default"))
    assert [(p.instance, p.address, p.groups) for p in h2.ports] == sorted(
        [
            ("a2", fixed["a2"].address, tuple(sorted((web, db)))),
            ("a3", fixed["a3"].address, (default,)),
        ],
        key=lambda p: [int(x) for x in p[1].split(".")],
    )
    assert all(p.name == port_name(p.mac) for p in h2.ports)
    # The groups the host's instances are in, with their rules; not a group only h1 uses.
    assert [(g.id, g.label) for g in h2.groups] == sorted(
        [(web, "ops/web"), (db, "ops/db"), (default, "ops/default")]
    )
    rules = {g.id: g.rules for g in h2.groups}
    assert [(r.protocol, r.from_port, r.to_port, r.cidr) for r in rules[web]] == [
        ("tcp", 80, 81, "0.0.0.0/0")
    ]
    assert all(isinstance(r, GroupRule) and r.ethertype == "IPv4" for r in rules[db])
    assert sorted((r.protocol, r.source) for r in rules[db]) == [("icmp", db), ("tcp", web)]
    # The cited groups' members wherever they run: a1 runs on h1. (The default group's
    # own rules cite it.)
    members = {s.id: s.members for s in h2.sources}
    assert set(members) == {web, db, default}
    assert members[default] == ((fixed["a3"].address, "a3"),)
    assert set(members[web]) == {(fixed["a1"].address, "a1"), (fixed["a2"].address, "a2")}
    assert members[db] == ((fixed["a2"].address, "a2"),)
    labels = {web: "ops/web", db: "ops/db", default: "ops/default"}
    assert [(s.id, s.label) for s in h2.sources] == sorted(labels.items())
    # A multi-host network: the host's own address answers its ports' DHCP.
    assert h2.dhcp_servers == (own["h2"],)
    assert _read(service, "h3") == DesiredFilter()
    return h2


def test_the_filter_read_names_ports_groups_rules_members_and_servers(tmp_path: Path) -> None:
    service = make_service(tmp_path, host="h1")
    _build(service)
    _check(service)


@pytest.mark.postgres
def test_postgres_reads_the_same_filter(tmp_path: Path, pg_url: str) -> None:
    on_sqlite = make_service(tmp_path, host="h1")
    on_postgres = make_service(tmp_path, url=pg_url, host="h1")
    for service in (on_sqlite, on_postgres):
        _build(service)
    assert _check(on_postgres) == _check(on_sqlite)
