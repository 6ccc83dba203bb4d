"""Security groups and rules: data and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from core.service import NetconService
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
