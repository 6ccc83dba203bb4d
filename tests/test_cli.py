"""The `netcon` command line: the seed's commands, tables for people, JSON for scripts."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from core.cli import main


def run(db: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--db", f"sqlite:///{db}", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Keep the user's own netcon.toml out of the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "netcon.db"
    assert run(path, "init")[0] == 0
    return path


def test_seed_positional_network_create(db: Path) -> None:
    code, out, err = run(db, "network", "create", "10.0.0.0/16", "4", "256", "100", "1000")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "LABEL", "MANAGER", "CIDR"]
    assert [line.split()[3] for line in lines[1:]] == [f"10.0.{i}.0/24" for i in range(4)]
    code, out, _ = run(db, "network", "list", "--json")
    assert [n["vlan"] for n in json.loads(out)] == [100, 101, 102, 103]


def test_named_options_and_config_file(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text(
        'fixed_range = "172.16.0.0/16"\nnetwork_size = 64\nvlan_start = 300\n'
    )
    code, out, err = run(db, "network", "create", "--num-networks", "2", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert [(n["cidr"], n["vlan"]) for n in made] == [
        ("172.16.0.0/26", 300),
        ("172.16.0.64/26", 301),
    ]
    code, _, err = run(db, "network", "create", "10.9.0.0/16", "--fixed-range", "10.8.0.0/16")
    assert code == 2 and "fixed_range" in err


def test_bad_config_file_is_one_line(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text("network_size = 'big'\n")
    code, out, err = run(db, "network", "list")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "network_size" in err


def test_floating_commands(db: Path) -> None:
    assert run(db, "demo")[0] == 0
    code, out, _ = run(db, "floating", "create", "nethost2", "198.51.100.0/30", "--pool", "nova")
    assert code == 0 and "created 2 floating IP(s)" in out
    code, out, _ = run(db, "floating", "allocate", "--project", "beta")
    assert (code, out) == (0, "198.51.100.1\n")
    code, out, _ = run(db, "floating", "associate", "198.51.100.1", "app2")
    assert code == 0 and "app2" in out
    code, out, _ = run(db, "floating", "list", "--host", "nethost2")
    assert out.splitlines()[1].split() == [
        "198.51.100.1",
        "nova",
        "nethost2",
        "eth0",
        "beta",
        "app2",
        "10.0.1.4",
    ]
    code, _, err = run(db, "floating", "release", "198.51.100.1")
    assert code == 2 and "disassociate it first" in err
    assert run(db, "floating", "disassociate", "198.51.100.1")[0] == 0
    assert run(db, "floating", "release", "198.51.100.1")[0] == 0
    code, out, _ = run(db, "floating", "delete", "198.51.100.0/30")
    assert code == 0 and "deleted 2" in out


def test_instances_projects_secgroups_vpn(db: Path) -> None:
    assert run(db, "demo")[0] == 0
    code, out, _ = run(db, "instance", "launch", "--project", "gamma", "api1", "--json")
    assert code == 0
    assert json.loads(out)["addresses"][0]["network"] == "10.0.2.0/24"
    code, out, _ = run(db, "instance", "show", "mail1")
    assert "iface eth0 inet static" in out and "version: 2" in out
    code, out, _ = run(db, "vpn", "list")
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["PROJECT", "IP:PORT", "PRIVATE"]
    assert rows[0].split()[0] == "alpha" and rows[0].split()[2] == "10.0.0.2"
    code, out, _ = run(
        db, "secgroup", "rule", "add", "--project", "gamma", "default", "tcp", "22", "22"
    )
    assert code == 0
    code, out, _ = run(db, "secgroup", "list", "--project", "gamma")
    assert "tcp 22 from 0.0.0.0/0" in out
    assert run(db, "instance", "terminate", "api1")[0] == 0
    code, out, _ = run(db, "fixed", "list", "--network", "10.0.2.0/24", "--in-use")
    assert out.splitlines()[1:] == []
    assert run(db, "project", "create", "delta", "--manager", "flatdhcp")[0] == 0
    code, out, _ = run(db, "project", "list")
    assert any(line.split()[:2] == ["delta", "flatdhcp"] for line in out.splitlines())


def test_demo_refuses_a_populated_database(db: Path) -> None:
    assert run(db, "demo")[0] == 0
    code, _, err = run(db, "demo")
    assert code == 2 and "already holds projects" in err
