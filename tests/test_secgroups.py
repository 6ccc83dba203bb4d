"""Security groups and rules: data and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from core.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from core.service import ChangeSet, NetconService
from core.store.schema import instances
from tests.support import make_service


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    service = make_service(tmp_path, quota_security_group_rules=3)
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.create_project("alpha")
    return service


def test_every_project_has_default(service: NetconService) -> None:
    groups = service.list_security_groups("alpha")
    assert [g.name for g in groups] == ["default"]
    with pytest.raises(Conflict, match="default"):
        service.delete_security_group("alpha", "default")


def test_rules(service: NetconService) -> None:
    service.create_security_group("alpha", "web", "web servers")
    rule = service.add_security_group_rule("alpha", "web", "tcp", "80", "443")
    assert (rule.protocol, rule.from_port, rule.to_port, rule.cidr) == ("tcp", 80, 443, "0.0.0.0/0")
    icmp = service.add_security_group_rule("alpha", "web", "icmp", -1, -1, cidr="10.0.0.0/8")
    assert (icmp.from_port, icmp.to_port) == (-1, -1)
    grant = service.add_security_group_rule("alpha", "web", "udp", 53, 53, source_group="default")
    assert grant.source_group == "default" and grant.cidr is None
    with pytest.raises(QuotaExceeded):
        service.add_security_group_rule("alpha", "web", "tcp", 22, 22)
    service.remove_security_group_rule(icmp.id)
    with pytest.raises(Conflict, match="already has this rule"):
        service.add_security_group_rule("alpha", "web", "tcp", 80, 443)
    with pytest.raises(NotFound):
        service.remove_security_group_rule(icmp.id)
    (web,) = [g for g in service.list_security_groups() if g.name == "web"]
    assert [r.id for r in web.rules] == [rule.id, grant.id]


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("sctp", 1, 2), {}, "protocol"),
        (("tcp", 0, 80), {}, "from_port"),
        (("tcp", 80, 65536), {}, "to_port"),
        (("tcp", 443, 80), {}, "to_port"),
        (("udp", "x", 80), {}, "from_port"),
        (("icmp", 256, 0), {}, "from_port"),
        (("tcp", 22, 22), {"cidr": "10.0.0.0/33"}, "cidr"),
        (("tcp", 22, 22), {"cidr": "10.0.0.1/8"}, "cidr"),
        (("tcp", 22, 22), {"cidr": "10.0.0.0/8", "source_group": "default"}, "cidr"),
    ],
)
def test_bad_rules(
    service: NetconService, args: tuple[object, ...], kwargs: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.add_security_group_rule("alpha", "default", *args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_group_in_use_cannot_go(service: NetconService) -> None:
    service.create_security_group("alpha", "db")
    service.launch_instance("alpha", "db1", ["default", "db"])
    assert service.get_instance("db1").instance.security_groups == ("db", "default")
    with pytest.raises(Conflict, match="used by 1"):
        service.delete_security_group("alpha", "db")
    with pytest.raises(InvalidInput, match="name"):
        service.create_security_group("alpha", "bad name")
    with pytest.raises(InvalidInput, match="description"):
        service.create_security_group("alpha", "x", "two\nlines")


def test_default_group_lets_its_members_in(service: NetconService) -> None:
    (default,) = service.list_security_groups("alpha")
    assert [(r.protocol, r.cidr, r.source_group, r.ethertype) for r in default.rules] == [
        ("any", None, "default", "IPv4"),
        ("any", None, "default", "IPv6"),
    ]


def test_changes_tell_the_hosts_whose_filters_change(service: NetconService) -> None:
    told: list[ChangeSet] = []
    service.listeners.append(told.append)
    service.create_security_group("alpha", "web")
    service.create_security_group("alpha", "db")
    # A group no instance uses: no host has anything to change.
    rule = service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    assert told == []
    service.launch_instance("alpha", "web1")
    with service.db.write() as connection:
        connection.execute(update(instances).values(host="compute7"))
    service.launch_instance("alpha", "db1", ["db"])
    service.add_security_group_rule("alpha", "db", "tcp", 5432, 5432, source_group="web")
    told.clear()
    # web1 joins web: its own host, and db1's host, whose rule names web as a source.
    service.add_instance_security_group("web1", "web")
    service.remove_security_group_rule(rule.id)
    service.remove_instance_security_group("web1", "web")
    assert [set(c.hosts) for c in told] == [{"compute7", "nethost1"}] * 3


def test_membership_after_launch(service: NetconService) -> None:
    service.create_security_group("alpha", "web")
    service.launch_instance("alpha", "web1")
    assert service.add_instance_security_group("web1", "web") == ("default", "web")
    with pytest.raises(Conflict, match="already in web"):
        service.add_instance_security_group("web1", "web")
    assert service.remove_instance_security_group("web1", "default") == ("web",)
    assert service.remove_instance_security_group("web1", "web") == ()
    with pytest.raises(NotFound, match="not in a group"):
        service.remove_instance_security_group("web1", "web")
    # With no group, only replies and DHCP get in.
    verdict = service.explain_ingress("web1", "10.0.0.9", "tcp", 22)
    assert not verdict.allowed and "groups (none)" in verdict.decided_by


def test_set_groups_is_one_change(service: NetconService) -> None:
    told: list[ChangeSet] = []
    service.listeners.append(told.append)
    service.create_security_group("alpha", "web")
    service.create_security_group("alpha", "db")
    service.launch_instance("alpha", "web1")
    told.clear()
    events = len(service.list_audit(limit=1000))
    # Joins web and db, leaves default: one transaction, one audit event.
    assert service.set_instance_security_groups("web1", ["web", "db", "web"]) == ("db", "web")
    assert len(told) == 1 and told[0].security and told[0].hosts == {"nethost1"}
    event = service.list_audit(limit=1)[0]
    assert len(service.list_audit(limit=1000)) == events + 1
    assert (event.action, event.target) == ("instance.secgroup.set", "web1")
    assert '"default"' in (event.before or "") and '"db"' in (event.after or "")
    # The same groups again: nothing to do, nothing recorded.
    assert service.set_instance_security_groups("web1", ["db", "web"]) == ("db", "web")
    assert len(told) == 1
    # An unknown group refuses the whole change, naming the field.
    with pytest.raises(NotFound, match="no security group named 'nope'") as refused:
        service.set_instance_security_groups("web1", ["default", "nope"])
    assert refused.value.field == "security_groups"
    assert service.get_instance("web1").instance.security_groups == ("db", "web")
    assert service.set_instance_security_groups("web1", []) == ()


def test_effective_rules_and_explain(service: NetconService) -> None:
    service.create_security_group("alpha", "web")
    service.create_security_group("alpha", "ops")
    service.add_security_group_rule("alpha", "web", "tcp", 80, 81)
    service.add_security_group_rule("alpha", "web", "tcp", 22, 22, source_group="ops")
    service.add_security_group_rule("alpha", "web", "icmp", 8, -1, cidr="10.9.0.0/16")
    web = service.launch_instance("alpha", "web1", ["web"]).addresses[0]
    admin = service.launch_instance("alpha", "admin", ["ops"]).addresses[0]
    ingress = service.instance_ingress("web1")
    assert ingress.groups == ("web",) and ingress.otherwise == "deny"
    assert [r.text for r in ingress.rules] == [
        "tcp 80-81 from 0.0.0.0/0",
        "tcp 22 from members of ops",
        "icmp type 8 from 10.9.0.0/16",
    ]
    (port,) = ingress.ports
    assert port.port == "tap" + web.mac.replace(":", "") and port.dhcp_server == "10.0.0.1"

    def verdict(source: str, protocol: str, port: int | None = None, **icmp: int) -> str:
        answer = service.explain_ingress("web1", source, protocol, port, **icmp)  # type: ignore[arg-type]
        return ("allow " if answer.allowed else "deny ") + answer.decided_by

    assert verdict("198.51.100.7", "tcp", 81).startswith("allow rule #")
    assert verdict("198.51.100.7", "tcp", 22).startswith("deny default deny: no rule of groups web")
    assert "members of ops" in verdict(admin.address, "tcp", 22)
    assert verdict("10.9.3.4", "icmp", icmp_type=8).startswith("allow")
    assert verdict("10.9.3.4", "icmp", icmp_type=0).startswith("deny")
    assert verdict("10.0.0.1", "udp", 68).startswith("allow DHCP from the dnsmasq of 10.0.0.0/24")
