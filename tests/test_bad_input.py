"""Any bad input: one line naming the field, and the database left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import NetconError
from core.service import NetconService
from tests.support import make_service, sqlite_dump

NASTY = st.sampled_from(["\n", ",", " ", "$", "'", '"', "`", ";", "/", "\\", "\t", "\x00", "é"])
# Text that contains at least one character a dnsmasq hosts file or a shell would misread.
HOSTILE_TEXT = st.builds(lambda a, n, b: a + n + b, st.text(max_size=8), NASTY, st.text(max_size=8))
CIDR_LIKE = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda a, b, c, d, p: f"{a}.{b}.{c}.{d}/{p}",
        st.integers(0, 300),
        st.integers(0, 300),
        st.integers(0, 300),
        st.integers(0, 300),
        st.integers(-1, 40),
    ),
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> NetconService:
    service = make_service(tmp_path_factory.mktemp("demo"))
    service.load_demo()
    return service


def _unchanged(service: NetconService, call) -> NetconError:  # type: ignore[no-untyped-def]
    before = sqlite_dump(service.db.url)
    try:
        call()
    except NetconError as exc:
        error = exc
    else:
        raise AssertionError("bad input was accepted")
    assert sqlite_dump(service.db.url) == before
    assert "\n" not in str(error) and str(error)
    return error


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(name=HOSTILE_TEXT)
def test_hostile_names_are_refused_everywhere(demo: NetconService, name: str) -> None:
    error = _unchanged(demo, lambda: demo.launch_instance("alpha", name))
    assert str(error).startswith("name: ")
    error = _unchanged(demo, lambda: demo.create_project(name))
    assert str(error).startswith("project: ")
    error = _unchanged(demo, lambda: demo.create_networks("10.30.0.0/24", 1, 256, label=name))
    assert str(error).startswith("label: ")
    error = _unchanged(demo, lambda: demo.create_security_group("alpha", name))
    assert str(error).startswith("name: ")


@SETTINGS
@given(fixed_range=CIDR_LIKE, num=st.integers(-5, 5000), size=st.integers(-1, 1 << 20))
def test_network_create_either_works_or_changes_nothing(
    demo: NetconService, fixed_range: str, num: int, size: int
) -> None:
    before = sqlite_dump(demo.db.url)
    try:
        made = demo.create_networks(fixed_range, num, size)
    except NetconError as exc:
        assert sqlite_dump(demo.db.url) == before
        assert "\n" not in str(exc)
    else:
        # Valid input: clean up so later examples see the demo database again.
        for network in made:
            demo.delete_network(network.id)


@SETTINGS
@given(ip_range=CIDR_LIKE, host=st.one_of(st.just("nethost1"), HOSTILE_TEXT))
def test_floating_create_either_works_or_changes_nothing(
    demo: NetconService, ip_range: str, host: str
) -> None:
    before = sqlite_dump(demo.db.url)
    try:
        demo.create_floating_range(host, ip_range)
    except NetconError:
        assert sqlite_dump(demo.db.url) == before
    else:
        demo.delete_floating_range(ip_range)


@SETTINGS
@given(
    address=st.one_of(CIDR_LIKE, st.sampled_from(["203.0.113.1", "203.0.113.3", "203.0.113.9"])),
    instance=st.one_of(HOSTILE_TEXT, st.sampled_from(["web1", "app1", "ghost"])),
)
def test_association_refusals_change_nothing(
    demo: NetconService, address: str, instance: str
) -> None:
    # Every one of these is refused: taken, foreign, unallocated, unknown or malformed.
    _unchanged(demo, lambda: demo.associate_floating_ip(address, instance))


@SETTINGS
@given(
    protocol=st.sampled_from(["tcp", "udp", "icmp", "gre", ""]),
    low=st.integers(-3, 70000),
    high=st.integers(-3, 70000),
)
def test_rule_ports(demo: NetconService, protocol: str, low: int, high: int) -> None:
    before = sqlite_dump(demo.db.url)
    try:
        rule = demo.add_security_group_rule("gamma", "default", protocol, low, high)
    except NetconError:
        assert sqlite_dump(demo.db.url) == before
    else:
        if protocol == "icmp":
            assert -1 <= rule.from_port <= 255 and -1 <= rule.to_port <= 255
        else:
            assert 1 <= rule.from_port <= rule.to_port <= 65535
        demo.remove_security_group_rule(rule.id)


@pytest.mark.parametrize(
    ("args", "kwargs", "field", "words"),
    [
        # alpha/web holds tcp 80 and tcp 443 from anywhere.
        (("tcp", 80, 80), {}, "rule", "already has this rule"),
        (("tcp", 79, 81), {}, "rule", "overlaps rule #"),
        (("tcp", 443, 443), {"cidr": "10.0.0.0/8"}, "rule", "overlaps rule #"),
        (("udp", 53, 53), {"cidr": "192.0.2.0/24"}, None, None),  # no overlap: accepted
        (("tcp", 90, 80), {}, "to_port", "below from_port"),
        (("tcp", 0, 10), {}, "from_port", "outside 1-65535"),
        (("udp", 53, 65536), {}, "to_port", "outside 1-65535"),
        (("icmp", 256, 0), {}, "from_port", "outside 0-255"),
        (("icmp", 8, 300), {}, "to_port", "outside 0-255"),
        (("icmp", -1, 3), {}, "to_port", "needs an ICMP type"),
        (("any", 22, 22), {}, "from_port", "covers every port"),
        (("udp",), {}, "from_port", "needs a port range"),
        (("tcp", 22, 22), {"source_group": "beta/default"}, "source_group", "project beta"),
        (("tcp", 22, 22), {"source_group": "ghost"}, "source_group", "no security group"),
    ],
)
def test_rule_refusals_name_the_field_and_write_nothing(
    demo: NetconService,
    args: tuple[object, ...],
    kwargs: dict[str, str],
    field: str | None,
    words: str | None,
) -> None:
    call = lambda: demo.add_security_group_rule("alpha", "web", *args, **kwargs)  # noqa: E731
    if field is None:
        demo.remove_security_group_rule(call().id)
        return
    error = _unchanged(demo, call)
    assert error.field == field and words in error.rule, error


def test_source_group_of_another_project_by_plain_name(demo: NetconService) -> None:
    demo.create_security_group("beta", "only-beta")
    try:
        error = _unchanged(
            demo,
            lambda: demo.add_security_group_rule(
                "alpha", "web", "tcp", 22, 22, source_group="only-beta"
            ),
        )
        assert error.field == "source_group" and "group of project beta" in error.rule
    finally:
        demo.delete_security_group("beta", "only-beta")


def test_groups_in_use_cannot_be_deleted(demo: NetconService) -> None:
    error = _unchanged(demo, lambda: demo.delete_security_group("alpha", "web"))
    assert error.field == "name" and "used by 2 instance(s)" in error.rule
    demo.create_security_group("alpha", "cited")
    rule = demo.add_security_group_rule("alpha", "web", "tcp", 9000, 9000, source_group="cited")
    try:
        error = _unchanged(demo, lambda: demo.delete_security_group("alpha", "cited"))
        assert error.field == "name" and f"source of rule #{rule.id}" in error.rule
    finally:
        demo.remove_security_group_rule(rule.id)
        demo.delete_security_group("alpha", "cited")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("web1", "300.1.1.1", "tcp", 22), "from"),
        (("web1", "10.0.0.9", "sctp", 22), "proto"),
        (("web1", "10.0.0.9", "tcp", None), "port"),
        (("web1", "10.0.0.9", "tcp", 70000), "port"),
        (("web1", "10.0.0.9", "icmp", 22), "port"),
        (("ghost", "10.0.0.9", "tcp", 22), "instance"),
    ],
)
def test_explain_refusals(demo: NetconService, args: tuple[object, ...], field: str) -> None:
    error = _unchanged(demo, lambda: demo.explain_ingress(*args))  # type: ignore[arg-type]
    assert error.field == field


def _netcon(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETCON_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "demo.db"
    assert _netcon(db, "demo").returncode == 0
    # Fold the WAL into the main file so one file is the whole database to copy.
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return db


def _digest(db: Path) -> str:
    return "".join(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(db.parent.glob(db.name + "*"))
    )


@pytest.mark.parametrize(
    "args",
    [
        ["network", "create", "10.0.0.0/33"],
        ["network", "create", "10.40.0.0/16", "4", "100"],
        ["network", "create", "10.40.0.0/24", "4", "256"],
        ["network", "create", "10.0.0.0/24"],
        ["network", "create", "10.40.0.0/16", "1", "256", "4095"],
        ["network", "create", "10.40.0.0/16", "1", "256", "100"],
        ["network", "create", "10.40.0.0/16", "1", "256", "300", "99999"],
        ["network", "create", "10.40.0.0/16", "--label", "a,b"],
        ["floating", "create", "nethost1", "203.0.113.0/24"],
        ["floating", "create", "nethost1", "300.0.0.1-300.0.0.9"],
        ["floating", "associate", "203.0.113.3", "app1"],
        ["floating", "associate", "203.0.113.1", "web2"],
        ["floating", "release", "203.0.113.1"],
        ["floating", "allocate", "--project", "nobody"],
        ["instance", "launch", "--project", "alpha", "web$1"],
        ["instance", "launch", "--project", "alpha", "web1"],
        ["instance", "terminate", "ghost"],
        ["project", "create", "a b"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "tcp", "0", "80"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "tcp", "80", "79"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "tcp", "443"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "tcp", "440", "450"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "icmp", "8", "256"],
        [
            "secgroup",
            "rule",
            "add",
            "--project",
            "alpha",
            "web",
            "tcp",
            "22",
            "--source-group",
            "beta/default",
        ],
        ["secgroup", "delete", "--project", "alpha", "web"],
        ["secgroup", "leave", "web1", "ghost"],
        ["secgroup", "join", "web1", "web"],
        ["secgroup", "explain", "web1", "--from", "10.0.0.300", "--proto", "tcp", "--port", "22"],
        ["fixed", "unreserve", "10.0.0.1"],
        ["network", "delete", "10.0.0.0/24"],
        ["network", "frobnicate"],
        # Addresses no network may have (RFC 6890).
        ["network", "create", "0.0.0.0/0"],
        ["network", "create", "0.0.0.0/8", "1", "256"],
        ["network", "create", "127.0.0.0/24", "1", "256"],
        ["network", "create", "169.254.0.0/16", "1", "256"],
        ["network", "create", "224.0.0.0/24", "1", "256"],
        ["network", "create", "240.0.0.0/24", "1", "256"],
        ["network", "create", "255.255.255.0/24", "1", "256"],
        ["network", "create", "--manager", "flatdhcp", "--bridge", "brx", "127.1.0.0/24"],
        ["floating", "create", "nethost1", "127.0.0.0/28"],
        ["floating", "create", "nethost1", "224.0.0.1-224.0.0.9"],
        ["floating", "create", "nethost1", "169.254.169.254"],
        ["floating", "create", "nethost1", "255.255.255.255"],
        # Bridges that are links the host needs for something else.
        ["network", "create", "--manager", "flatdhcp", "--bridge", "lo", "10.50.0.0/24"],
        ["network", "create", "--manager", "flat", "--bridge", "eth0", "10.50.0.0/24"],
        ["network", "create", "--manager", "flatdhcp", "--bridge", "eth1", "10.50.0.0/24"],
        ["network", "create", "--manager", "flat", "--bridge", "brdhcp", "10.50.0.0/24"],
        ["network", "create", "--manager", "vlan", "--bridge", "br7", "10.50.0.0/24"],
        ["network", "create", "--manager", "flat", "--bridge", "a/b", "10.50.0.0/24"],
        ["network", "create", "--manager", "flat", "--bridge", "x" * 16, "10.50.0.0/24"],
        ["network", "create", "10.50.0.0/24", "--segmentation", "gre"],
        ["network", "create", "--manager", "flat", "--segmentation", "vxlan", "10.50.0.0/24"],
        ["network", "create", "--manager", "bridge", "10.50.0.0/24"],
        ["network", "create", "10.50.0.0/24", "--dns", "dns.example"],
        ["network", "create", "10.50.0.0/24", "1", "256", "100", "1000", "--vlan-start", "7"],
        # Names: case, length, characters.
        ["instance", "launch", "--project", "alpha", "WEB1"],
        ["instance", "launch", "--project", "alpha", "x" * 10_000],
        ["instance", "launch", "--project", "alpha", "-web"],
        ["instance", "launch", "--project", "alpha", "web_1"],
        ["instance", "launch", "--project", "nobody", "web9"],
        ["instance", "launch", "--project", "alpha", "web9", "--security-group", "nope"],
        ["project", "create", "x" * 64],
        ["project", "create", "alpha"],
        ["project", "create", "zeta", "--manager", "neutron"],
        ["project", "delete", "alpha"],
        ["secgroup", "create", "--project", "alpha", "web"],
        ["secgroup", "delete", "--project", "alpha", "default"],
        # Ids and numbers out of range.
        ["network", "show", "99999999999999999999"],
        ["network", "show", "4294967296"],
        ["network", "delete", "0"],
        ["secgroup", "rule", "remove", "99999999999999999999"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "tcp", "80", "70000"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "tcp", "90", "80"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "icmp", "256", "0"],
        ["secgroup", "rule", "add", "--project", "alpha", "web", "tcp", "80", "80"],
        [
            "secgroup",
            "rule",
            "add",
            "--project",
            "alpha",
            "web",
            "tcp",
            "81",
            "81",
            "--cidr",
            "10.0.0.0/8",
            "--source-group",
            "default",
        ],
        # Pools, addresses and leases.
        ["floating", "allocate", "--project", "alpha", "--pool", "nope"],
        ["floating", "associate", "10.0.0.3", "web1"],
        ["floating", "associate", "203.0.113.3", "web1", "--fixed-address", "10.9.9.9"],
        ["floating", "disassociate", "203.0.113.3"],
        ["floating", "delete", "198.51.100.0/24"],
        ["floating", "delete", "203.0.113.0/28"],
        ["fixed", "reserve", "10.0.0.3"],
        ["fixed", "reserve", "10.99.0.1"],
        ["dhcp-event", "tftp", "fa:16:3e:00:00:01", "10.0.0.3"],
        ["dhcp-event", "add", "not-a-mac", "10.0.0.3"],
        ["dhcp-event", "add", "fa:16:3e:00:00:01", "10.99.0.1"],
        ["--lock-timeout", "-1", "project", "list"],
        # What guests are handed: DNS servers and MTU.
        ["network", "modify", "10.0.0.0/24", "--dns1", "dns.example"],
        ["network", "modify", "10.0.0.0/24", "--dns2", "10.0.0.300"],
        ["network", "modify", "10.0.0.0/24", "--mtu", "575"],
        ["network", "modify", "10.0.0.0/24", "--mtu", "1501"],
        ["network", "modify", "10.0.0.0/24", "--mtu", "jumbo"],
        ["agent", "--poll", "0"],
        ["agent", "--poll", "soon"],
        ["agent", "--poll", "nan"],
        # The browser console: nothing listens, nothing is written.
        ["serve", "--listen", "0.0.0.0:8023"],
        ["serve", "--listen", "127.0.0.1:99999"],
        ["serve", "--max-sessions", "0"],
        ["serve", "--token-file", "/nonexistent/token"],
        ["serve", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"],
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_no_write(
    demo_file: Path, tmp_path: Path, args: list[str]
) -> None:
    db = tmp_path / "netcon.db"
    shutil.copy(demo_file, db)
    before = _digest(db)
    result = _netcon(db, *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netcon"), result.stderr
    assert "Traceback" not in result.stderr
    assert _digest(db) == before


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('dns_servers = ["resolver.example"]', "dns_servers"),
        ('dns_servers = ["10.0.0.1", "::x"]', "dns_servers"),
        ("physical_mtu = 575", "physical_mtu"),
    ],
)
def test_bad_guest_settings_in_netcon_toml_are_one_line_and_no_write(
    demo_file: Path, tmp_path: Path, line: str, field: str
) -> None:
    db = tmp_path / "netcon.db"
    shutil.copy(demo_file, db)
    before = _digest(db)
    config = tmp_path / "config" / "netcon" / "netcon.toml"
    config.parent.mkdir(parents=True)
    config.write_text(line + "\n")
    env = {
        **os.environ,
        "NETCON_DATABASE_URL": f"sqlite:///{db}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "network", "modify", "10.0.0.0/24", "--mtu", "1400"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and field in lines[0], result.stderr
    assert _digest(db) == before
