"""`netcon host list` reads the hosts on a bare driver connection, without SQLAlchemy,
and prints exactly what the service's listing prints; where it cannot read the
database as it is, the ordinary command line answers (and refuses) as always."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.host import COLUMNS
from core.cli.output import Output
from core.service import NetconService
from core.service.demo import load_demo
from tests.support import make_service


@pytest.fixture(params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> NetconService:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    service = make_service(tmp_path, url=url)
    load_demo(service)
    for name in ("nethost1", "nethost2"):
        service.heartbeat(name)
    service.record_applied("nethost2", None, error="dnsmasq would not start")
    return service


def _shown(service: NetconService, as_json: bool) -> str:
    """The service's listing as the command prints it, by a service whose clock is the
    command's (now: the heartbeats, made at a fixed time in the past, are old)."""
    now = NetconService(service.db.url, service.settings, create=False)
    out = io.StringIO()
    Output(out, as_json=as_json).rows(now.list_hosts(), COLUMNS)
    now.db.dispose()
    return out.getvalue()


def _lean(url: str, *options: str) -> tuple[str, list[str]]:
    """What `netcon host list` prints, and which SQLAlchemy modules it imported."""
    script = (
        "import sys\n"
        "from core.cli import main\n"
        f"status = main(['--db', {url!r}, 'host', 'list', *{list(options)!r}])\n"
        "sys.stdout.flush()\n"
        "print('MODULES', [m for m in sys.modules if m.startswith('sqlalchemy')])\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    printed, _, modules = result.stdout.rpartition("MODULES ")
    return printed, json.loads(modules.replace("'", '"'))


def test_the_listing_is_the_services_and_needs_no_sqlalchemy(cloud: NetconService) -> None:
    for as_json in (False, True):
        printed, modules = _lean(cloud.db.url, *(["--json"] if as_json else []))
        assert modules == []
        assert printed == _shown(cloud, as_json)
    rows = json.loads(_lean(cloud.db.url, "--json")[0])
    by_name = {row["name"]: row for row in rows}
    assert by_name["nethost2"]["last_error"] == "dnsmasq would not start"
    assert by_name["nethost1"]["pending"] > 0


def test_a_database_it_cannot_read_as_it_is_is_refused_as_always(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nowhere.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "tui", "--db", missing, "host", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no netcon database" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "nowhere.db").exists()


def test_other_options_go_to_the_ordinary_command_line(cloud: NetconService) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui", "--db", cloud.db.url, "host", "list", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--bogus" in result.stderr


def test_one_count_of_pending_for_every_host(cloud: NetconService) -> None:
    """What the console reads (pending_overview) counts exactly what `host list` prints
    under PENDING, and names what each owed change touched."""
    cloud.heartbeat("nethost2")
    moved = cloud.modify_network("10.0.1.0/24", host="nethost2")
    overview = cloud.pending_overview()
    assert overview.hosts == tuple(cloud.list_hosts())
    rows = json.loads(_lean(cloud.db.url, "--json")[0])
    printed = {row["name"]: row["pending"] for row in rows}
    for host in overview.hosts:
        owed = overview.owed.get(host.name)
        assert printed[host.name] == host.pending == (len(owed.changes) if owed else 0)
    nethost2 = overview.owed["nethost2"]
    assert moved.bridge in nethost2.bridges and nethost2.changes == (cloud.last_change.change,)
    cloud.record_applied("nethost2", cloud.last_change.change)
    assert "nethost2" not in cloud.pending_overview().owed


def test_owed_security_groups_and_rules_are_named_for_every_host(cloud: NetconService) -> None:
    """A rule added to a group whose member runs on nethost2: nethost2's record names
    the group ("project/name", as rows and plans do) and the rule, until it applies."""
    cloud.launch_instance("alpha", "far1", ["web"], host="nethost2")
    cloud.record_applied("nethost2", cloud.last_change.change)
    rule = cloud.add_security_group_rule("alpha", "web", "tcp", 8443, 8443)
    owed = cloud.pending_overview().owed["nethost2"]
    assert owed.groups == ("alpha/web",) and owed.rules == (rule.id,)
    added = cloud.last_change.change
    assert owed.touched == ((added, ("alpha/web", f"rule #{rule.id}")),)
    cloud.record_applied("nethost2", cloud.last_change.change)
    assert "nethost2" not in cloud.pending_overview().owed
    cloud.set_instance_security_groups("far1", ["default"])
    owed = cloud.pending_overview().owed["nethost2"]
    assert owed.groups == ("alpha/default", "alpha/web") and owed.rules == ()
