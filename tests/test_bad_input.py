"""Any bad input: one line naming the field, and the database left exactly as it was."""

from __future__ import annotations

import hashlib
import json
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
from core.service.demo import load_demo
from tests.support import make_service, reading_user, sqlite_dump

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
    load_demo(service)
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
        # A segment changes only under a VLAN network no instance is plugged into.
        ["network", "modify", "10.0.3.0/24", "--segmentation", "qinq"],
        ["network", "modify", "10.0.0.0/24", "--segmentation", "vlan"],
        ["network", "modify", "10.10.0.0/24", "--segmentation", "vxlan"],
        # The console's namespace is checked before the database is opened.
        ["--netns", "nc-absent-0000"],
        ["--netns", "a/b"],
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


# -- the last twelve (issue 23) ----------------------------------------------------------


def _one_line(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _json_error(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    error = json.loads(lines[0])["error"]
    assert isinstance(error, dict)
    return error


@pytest.fixture
def demo_copy(demo_file: Path, tmp_path: Path) -> Path:
    db = tmp_path / "netcon.db"
    shutil.copy(demo_file, db)
    return db


# 1. A namespace name the kernel cannot hold is bad input, like '../x', everywhere.
@pytest.mark.parametrize(
    "netns", ["x" * 256, "é" * 128, "a\\b/c", "."], ids=["256", "utf8-256", "slash", "dot"]
)
@pytest.mark.parametrize(
    "command",
    [["host", "plan"], ["host", "apply"], ["vpn", "run", "alpha"], ["vpn", "spawn"],
     ["vpn", "stop", "alpha"], ["vpn", "list"], ["agent"]],
    ids=lambda words: "-".join(words),
)  # fmt: skip
def test_a_namespace_name_too_long_is_refused_as_bad_input(
    demo_copy: Path, netns: str, command: list[str]
) -> None:
    before = _digest(demo_copy)
    result = _netcon(demo_copy, *command, "--netns", netns)
    line = _one_line(result, 2, "--netns", "is not a namespace name", "1-255 bytes")
    assert "internal error" not in line and "Errno" not in line
    assert "x" * 100 not in line  # the name is quoted cut, not whole
    assert _digest(demo_copy) == before
    error = _json_error(_netcon(demo_copy, "--json", *command, "--netns", netns))
    assert error["field"] == "--netns" and error["exit_status"] == 2


def test_the_longest_namespace_name_is_a_name(demo_copy: Path) -> None:
    # 255 bytes is a name (the namespace just is not there); 256 is not.
    result = _netcon(demo_copy, "host", "plan", "--netns", "n" * 255)
    _one_line(result, 2, "--netns", "does not exist")


# 3. A settings file that is not a file is an error naming it, never skipped.
@pytest.mark.parametrize("kind", ["directory", "dangling link"])
def test_a_netcon_toml_that_is_no_file_is_an_error_naming_it(
    demo_copy: Path, tmp_path: Path, kind: str
) -> None:
    config = tmp_path / "config" / "netcon" / "netcon.toml"
    config.parent.mkdir(parents=True)
    if kind == "directory":
        config.mkdir()
    else:
        config.symlink_to(tmp_path / "gone.toml")
    env = {
        **os.environ,
        "NETCON_DATABASE_URL": f"sqlite:///{demo_copy}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    before = _digest(demo_copy)
    for command in (["project", "create", "zeta"], ["host", "list"]):
        result = subprocess.run(
            [sys.executable, "-m", "core.cli", *command],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        words = ("is a directory",) if kind == "directory" else ("is a link to", "gone.toml")
        line = _one_line(result, 2, str(config), *words)
        assert result.stdout == "", line
    assert _digest(demo_copy) == before


# 4. An empty database URL is refused, never read as "use the default".
@pytest.mark.parametrize(
    ("words", "environment", "field"),
    [
        (["--db", ""], None, "--db"),
        (["--db="], None, "--db"),
        (["--db", " "], None, "--db"),
        ([], "", "NETCON_DATABASE_URL"),
    ],
    ids=["db-empty", "db-equals", "db-blank", "environment-empty"],
)
def test_an_empty_database_url_is_refused_and_nothing_is_made(
    demo_copy: Path, tmp_path: Path, words: list[str], environment: str | None, field: str
) -> None:
    data_home = tmp_path / "data"
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "XDG_CONFIG_HOME": str(tmp_path)}
    # A script whose own variable is unset: NETCON_DATABASE_URL names a real database
    # (or is set but empty), the default path is where an accident would land.
    env["NETCON_DATABASE_URL"] = f"sqlite:///{demo_copy}" if environment is None else environment
    before = _digest(demo_copy)
    for command in (["project", "create", "zeta"], ["--json", "project", "create", "zeta"]):
        result = subprocess.run(
            [sys.executable, "-m", "core.cli", *words, *command],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        if "--json" in command:
            assert _json_error(result)["field"] == field
        else:
            _one_line(result, 2, field, "is empty")
    # The console's entry point refuses the same way.
    console = subprocess.run(
        [sys.executable, "-m", "tui", *words], capture_output=True, text=True, env=env, timeout=60
    )
    _one_line(console, 2, field, "is empty")
    assert not data_home.exists()
    assert _digest(demo_copy) == before


def test_an_empty_database_url_is_refused_by_the_library_too() -> None:
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        NetconService("")
    assert refused.value.field == "--db"


# 5. A very long batch line is refused as it is read, at a stated limit.
def test_a_very_long_batch_line_is_refused_at_the_stated_limit(demo_copy: Path) -> None:
    from core.cli.batch import MAX_LINE

    before = _digest(demo_copy)
    huge = "project create " + "x" * 1_000_000
    script = f"{huge}\nproject create zeta\n"
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "--db", f"sqlite:///{demo_copy}", "batch"],
        input=script, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = _one_line(result, 2, "line 1", f"{len(huge)} characters", f"the {MAX_LINE}")
    assert len(line) < 200
    assert result.stdout == ""  # the batch stopped at the first failing line
    assert _digest(demo_copy) == before

    # --force goes on after it, with the next line, and under --json names the field.
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "--db", f"sqlite:///{demo_copy}", "--json",
         "batch", "--force"],
        input=script, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    error = _json_error(result)
    assert error["field"] == "line" and error["where"] == "line 1"
    assert '"name": "zeta"' in result.stdout


def test_a_batch_line_at_the_limit_is_read_as_a_command(demo_copy: Path) -> None:
    from core.cli.batch import MAX_LINE

    # Exactly MAX_LINE characters (and its newline) is a line like any other: refused for
    # what it says, not for its length. One more character is over the limit.
    for extra, field in ((0, "command line"), (1, "line")):
        text = "x" * (MAX_LINE + extra)
        result = subprocess.run(
            [sys.executable, "-m", "core.cli", "--db", f"sqlite:///{demo_copy}", "--json",
             "batch"],
            input=text + "\n", capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert _json_error(result)["field"] == field, result.stderr


# 6. Names differing only in case: one rule for every named thing.
def test_names_differing_only_in_case_are_refused_for_every_named_thing(
    tmp_path: Path,
) -> None:
    from core.errors import Conflict

    service = make_service(tmp_path)
    load_demo(service)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs1t0bK3dyzX0dNf8XX3bE0m0qBq2rVqv3pQqk6t5cN a@b"
    service.add_key("alpha", "admin", key)
    calls = {
        "project": lambda: service.create_project("ALPHA"),
        "security group": lambda: service.create_security_group("alpha", "WEB"),
        "default group": lambda: service.create_security_group("alpha", "Default"),
        "key": lambda: service.add_key("alpha", "Admin", key),
        "pool": lambda: service.create_floating_range("nethost1", "198.51.100.0/28", "PUBLIC"),
        "instance": lambda: service.launch_instance("alpha", "WEB1"),
    }
    for what, call in calls.items():
        error = _unchanged(service, call)
        assert isinstance(error, Conflict), what
        assert "names ignore case" in error.rule, (what, error)
    # The same names in another project, and another pool's own name, are fine.
    service.create_security_group("beta", "WEB")
    service.add_key("beta", "Admin", key)
    service.create_floating_range("nethost1", "198.51.100.0/28", "public")


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("projects", "(name, manager, created_at) VALUES ('ALPHA', 'flat', '2026-01-01')"),
        ("security_groups", "(project_id, name, description) VALUES (1, 'WEB', '')"),
        ("keys", "(project_id, name, public_key, fingerprint, created_at) "
                 "VALUES (1, 'ADMIN', 'k', 'f', '2026-01-01')"),
        ("floating_pools", "(name) VALUES ('PUBLIC')"),
        ("floating_ips", "(address, address_int, pool, host, interface, auto_assigned) "
                         "VALUES ('198.51.100.1', 3325256705, 'Public', 'h', 'eth0', false)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_database_itself_refuses_names_differing_only_in_case(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str, table: str, row: str
) -> None:
    from sqlalchemy import text

    from core.errors import DatabaseError

    url = request.getfixturevalue("pg_url") if dialect == "postgresql" else None
    service = make_service(tmp_path, url=url)
    load_demo(service)
    service.add_key("alpha", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs1t0bK3dyzX0dNf8X"
                    "X3bE0m0qBq2rVqv3pQqk6t5cN a@b")  # fmt: skip
    # Written around the service, as a second process or a hand in psql would.
    with pytest.raises(DatabaseError, match="refused"), service.db.write() as connection:
        connection.execute(text(f"INSERT INTO {table} {row}"))
    service.db.dispose()


def test_a_pool_lasts_while_it_holds_addresses(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    load_demo(service)
    service.create_floating_range("nethost1", "198.51.100.0/29", "spare")
    service.create_floating_range("nethost1", "198.51.100.8/29", "spare")
    service.delete_floating_range("198.51.100.0/29")
    # Still a pool: another case of its name is refused.
    error = _unchanged(
        service, lambda: service.create_floating_range("nethost1", "198.51.100.16/29", "SPARE")
    )
    assert error.field == "pool"
    service.delete_floating_range("198.51.100.8/29")
    # Gone with its last address: the name is free in any case.
    service.create_floating_range("nethost1", "198.51.100.16/29", "SPARE")
    assert service.allocate_floating_ip("alpha", pool="SPARE").address == "198.51.100.17"


# 7. A user who may only read: one clean sentence, and --json names the database.
def test_a_reader_is_refused_in_one_sentence_naming_the_database(
    demo_copy: Path, tmp_path: Path
) -> None:
    demo_copy.parent.chmod(0o755)
    demo_copy.chmod(0o644)
    before = _digest(demo_copy)
    with reading_user(tmp_path) as reader:
        argv = ["runuser", "-u", reader, "--", sys.executable, "-m", "core.cli",
                "--db", f"sqlite:///{demo_copy}"]  # fmt: skip
        env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent"}

        def run(*words: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*argv, *words], capture_output=True, text=True, env=env, timeout=60
            )

        line = _one_line(run("project", "create", "zeta", "--manager", "flat"), 1)
        assert line == (
            f"netcon: database sqlite:///{demo_copy} is read-only for this user (writing "
            "needs write permission on the file and its directory)"
        )
        error = _json_error(run("--json", "network", "modify", "1", "--mtu", "1400"))
        assert error["field"] == "--db" and error["exit_status"] == 1
        assert str(error["message"]).count("read-only") == 1
    assert _digest(demo_copy) == before


# 8. A modify that changes nothing writes nothing and says so.
def test_a_modify_that_changes_nothing_writes_nothing_and_says_so(demo_copy: Path) -> None:
    before = _digest(demo_copy)
    for words in (["--dns1", ""], ["--dns2", ""], ["--mtu", ""], ["--dhcp-lease-time", ""]):
        result = _netcon(demo_copy, "network", "modify", "10.0.0.0/24", *words)
        assert result.returncode == 0, result.stderr
        assert "nothing to change" in result.stdout, result.stdout
        result = _netcon(demo_copy, "--json", "network", "modify", "10.0.0.0/24", *words)
        assert result.returncode == 0 and '"cidr": "10.0.0.0/24"' in result.stdout
    assert _digest(demo_copy) == before
    # A real change still is one: recorded, and owed by the network's host.
    result = _netcon(demo_copy, "network", "modify", "10.0.0.0/24", "--dns1", "192.0.2.53")
    assert result.returncode == 0 and "nothing to change" not in result.stdout
    assert _digest(demo_copy) != before


def test_only_what_differs_is_recorded(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    load_demo(service)
    service.modify_network("10.0.0.0/24", mtu=1400)
    pending = service.pending_for("nethost1").changes
    last = service.last_change
    service.modify_network("10.0.0.0/24", mtu=1400, dns1=None)
    assert service.last_change is last
    assert service.pending_for("nethost1").changes == pending
    service.modify_network("10.0.0.0/24", mtu=1400, dns1="192.0.2.53")
    (event,) = service.list_audit(limit=1)
    assert event.action == "network.modify" and json.loads(event.after or "") == {
        "dns1": "192.0.2.53"
    }
