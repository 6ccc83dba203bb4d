"""Security-group rules of both families: ethertype, IPv6 CIDRs, ICMPv6, the default
group's twin rule, `explain` for IPv6 sources, and bad input refused whole."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine

from core.errors import Conflict, InvalidInput
from core.service import NetconService
from core.store.migrate import alembic_config
from tests.support import make_service, sqlite_dump


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    service = make_service(tmp_path)
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000, "2001:db8:5::/64")
    service.create_project("alpha")
    service.create_security_group("alpha", "web")
    return service


def test_family_comes_from_the_cidr_or_the_ethertype(service: NetconService) -> None:
    v6 = service.add_security_group_rule("alpha", "web", "tcp", 22, 22, cidr="2001:db8::/32")
    assert (v6.ethertype, v6.cidr) == ("IPv6", "2001:db8::/32")
    anywhere = service.add_security_group_rule("alpha", "web", "tcp", 80, 80, ethertype="ipv6")
    assert (anywhere.ethertype, anywhere.cidr) == ("IPv6", "::/0")
    v4 = service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    assert (v4.ethertype, v4.cidr) == ("IPv4", "0.0.0.0/0")
    echo = service.add_security_group_rule("alpha", "web", "icmpv6", 128, -1)
    assert (echo.protocol, echo.ethertype, echo.from_port) == ("icmp", "IPv6", 128)
    members = service.add_security_group_rule(
        "alpha", "web", "udp", 53, 53, source_group="default", ethertype="IPv6"
    )
    assert (members.ethertype, members.source_group) == ("IPv6", "default")
    listed = service.list_security_group_rules("alpha", "web")
    assert [(r.id, r.ethertype) for r in listed] == [
        (v6.id, "IPv6"),
        (anywhere.id, "IPv6"),
        (v4.id, "IPv4"),
        (echo.id, "IPv6"),
        (members.id, "IPv6"),
    ]


def test_overlap_is_judged_within_a_family(service: NetconService) -> None:
    service.add_security_group_rule("alpha", "web", "tcp", 22, 22, cidr="2001:db8::/32")
    with pytest.raises(Conflict, match="overlaps rule"):
        service.add_security_group_rule("alpha", "web", "tcp", 20, 30, cidr="2001:db8:1::/48")
    # The same ports over IPv4 are another rule.
    service.add_security_group_rule("alpha", "web", "tcp", 22, 22, cidr="0.0.0.0/0")


def test_default_group_has_a_member_rule_per_family(service: NetconService) -> None:
    default = next(g for g in service.list_security_groups("alpha") if g.name == "default")
    assert [(r.protocol, r.source_group, r.ethertype) for r in default.rules] == [
        ("any", "default", "IPv4"),
        ("any", "default", "IPv6"),
    ]


@pytest.mark.parametrize(
    ("args", "kwargs", "field", "words"),
    [
        (("tcp", 22, 22), {"cidr": "2001:db8::/32", "ethertype": "IPv4"}, "cidr", "IPv6 range"),
        (("tcp", 22, 22), {"cidr": "10.0.0.0/8", "ethertype": "IPv6"}, "cidr", "IPv4 range"),
        (("tcp", 22, 22), {"cidr": "2001:db8::1/32"}, "cidr", "host bits"),
        (("tcp", 22, 22), {"cidr": "2001:db8::/129"}, "cidr", "not a valid CIDR"),
        (("tcp", 22, 22), {"cidr": "2001:db8::"}, "cidr", "must be a CIDR"),
        (("tcp", 22, 22), {"ethertype": "IPv5"}, "ethertype", "IPv4 or IPv6"),
        (("icmpv6", 128, -1), {"ethertype": "IPv4"}, "protocol", "icmpv6"),
        (("icmpv6", 256, -1), {}, "from_port", "0-255"),
        (("icmpv6", 128, 300), {}, "to_port", "0-255"),
        (("icmpv6", -1, 0), {}, "to_port", "needs an ICMP type"),
        (("sctp", 1, 2), {"ethertype": "IPv6"}, "protocol", "icmpv6"),
    ],
)
def test_bad_rules_name_the_field_and_write_nothing(
    service: NetconService,
    args: tuple[object, ...],
    kwargs: dict[str, str],
    field: str,
    words: str,
) -> None:
    before = sqlite_dump(service.db.url)
    with pytest.raises(InvalidInput) as caught:
        service.add_security_group_rule("alpha", "web", *args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert sqlite_dump(service.db.url) == before


def test_explain_answers_for_ipv6_sources(service: NetconService) -> None:
    service.launch_instance("alpha", "web1", ["web"])
    service.launch_instance("alpha", "peer", ["default", "web"])
    web1 = service.get_instance("web1").instance.addresses[0]
    peer = service.get_instance("peer").instance.addresses[0]
    assert web1.address_v6 and peer.address_v6
    ssh = service.add_security_group_rule("alpha", "web", "tcp", 22, 22, cidr="2001:db8:99::/48")
    echo = service.add_security_group_rule("alpha", "web", "icmpv6", 128, -1)
    peers = service.add_security_group_rule(
        "alpha", "web", "udp", 53, 53, source_group="web", ethertype="IPv6"
    )

    allowed = service.explain_ingress("web1", "2001:db8:99::7", "tcp", 22)
    assert allowed.allowed and allowed.rule is not None and allowed.rule.id == ssh.id
    assert allowed.address == web1.address_v6
    assert "tcp 22 from 2001:db8:99::/48" in allowed.decided_by
    denied = service.explain_ingress("web1", "2001:db8:98::7", "tcp", 22)
    assert not denied.allowed and denied.rule is None and "default deny" in denied.decided_by
    # The IPv4 twin of the source is not let in by an IPv6 rule, nor the reverse.
    assert not service.explain_ingress("web1", "203.0.113.7", "tcp", 22).allowed
    ping = service.explain_ingress("web1", "2001:db8:1::1", "icmpv6")
    assert ping.allowed and ping.rule is not None and ping.rule.id == echo.id
    assert "icmpv6 type 128" in ping.packet
    assert not service.explain_ingress("web1", "203.0.113.7", "icmp").allowed
    member = service.explain_ingress("web1", str(peer.address_v6), "udp", 53)
    assert member.allowed and member.rule is not None and member.rule.id == peers.id
    assert "members of web over IPv6" in member.decided_by
    # Over IPv4 the peer is no member source of that rule.
    assert not service.explain_ingress("web1", peer.address, "udp", 53).allowed
    neighbour = service.explain_ingress("web1", "fe80::1", "icmp", icmp_type=135)
    assert neighbour.allowed and "neighbour discovery" in neighbour.decided_by
    with pytest.raises(InvalidInput) as caught:
        service.explain_ingress("web1", "203.0.113.7", "icmpv6")
    assert caught.value.field == "proto"
    with pytest.raises(InvalidInput) as caught:
        service.explain_ingress("web1", "2001:db8::zz", "tcp", 22)
    assert caught.value.field == "from"


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_upgrade_gives_default_groups_their_ipv6_twin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0011")
        connection.exec_driver_sql(
            "INSERT INTO projects (id, name, manager, created_at) "
            "VALUES (1, 'old', 'vlan', '2020-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO security_groups (id, project_id, name, description) "
            "VALUES (1, 1, 'default', 'default'), (2, 1, 'web', '')"
        )
        connection.exec_driver_sql(
            "INSERT INTO security_group_rules "
            "(group_id, protocol, from_port, to_port, cidr, source_group_id) "
            "VALUES (1, 'any', -1, -1, NULL, 1), (2, 'tcp', 80, 80, '0.0.0.0/0', NULL), "
            "(2, 'any', -1, -1, NULL, 2)"
        )
    engine.dispose()
    service = make_service(tmp_path, url=url)
    rules = {
        g.name: [(r.protocol, r.cidr, r.source_group, r.ethertype) for r in g.rules]
        for g in service.list_security_groups("old")
    }
    assert rules == {
        "default": [("any", None, "default", "IPv4"), ("any", None, "default", "IPv6")],
        # Another group's rules stay IPv4 only: what it let in, it still does.
        "web": [("tcp", "0.0.0.0/0", None, "IPv4"), ("any", None, "web", "IPv4")],
    }


def _netcon(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETCON_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_rules_of_both_families(tmp_path: Path) -> None:
    db = tmp_path / "netcon.db"
    service = make_service(tmp_path, url=f"sqlite:///{db}")
    service.create_project("alpha")
    add = ["secgroup", "rule", "add", "--project", "alpha", "default"]
    added = _netcon(db, "--json", *add, "icmpv6", "128", "--cidr", "2001:db8::/32")
    assert added.returncode == 0, added.stderr
    rule = json.loads(added.stdout)
    assert (rule["protocol"], rule["ethertype"], rule["cidr"]) == ("icmp", "IPv6", "2001:db8::/32")
    listed = _netcon(db, "secgroup", "rule", "list", "--project", "alpha", "default")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "ETHERTYPE" in lines[0]
    assert any("IPv6" in line and "icmpv6" in line and "2001:db8::/32" in line for line in lines)
    assert sum("IPv4" in line for line in lines) == 1
    as_json = json.loads(
        _netcon(db, "--json", "secgroup", "rule", "list", "--project", "alpha", "default").stdout
    )
    assert [r["ethertype"] for r in as_json] == ["IPv4", "IPv6", "IPv6"]

    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    before = sqlite_dump(f"sqlite:///{db}")
    for bad, field in (
        (["tcp", "22", "--cidr", "2001:db8::/32", "--ethertype", "IPv4"], "cidr"),
        (["icmp", "300", "--ethertype", "IPv6"], "from_port"),
        (["tcp", "22", "--ethertype", "ipx"], "ethertype"),
    ):
        result = _netcon(db, *add, *bad)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and field in lines[0] and "Traceback" not in result.stderr
    assert sqlite_dump(f"sqlite:///{db}") == before
