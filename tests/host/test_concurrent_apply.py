"""One apply at a time: two `netcon host apply` at once take turns, a second one is told
who holds the host, and a failed apply takes back only what it made itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import HostError
from core.linux import processes
from core.linux.applylock import ApplyLock
from tests.host.conftest import Lab, in_ns
from tests.host.scenario import NetworkHost, network_host

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 20


def _command(lab: Lab, host: NetworkHost, *argv: str) -> list[str]:
    config = lab.tmp_path / "config" / "netcon"
    config.mkdir(parents=True, exist_ok=True)
    (config / "netcon.toml").write_text(
        f'host = "nethost"\nstate_dir = "{lab.state_dir}"\npublic_interface = "pub0"\n'
        'vlan_interface = "und0"\nsegmentation = "vxlan"\ndhcp_lease_time = 120\n'
    )
    return [sys.executable, "-m", "core.cli", "--db", host.service.db.url, *argv]


def _start(lab: Lab, host: NetworkHost, *argv: str) -> subprocess.Popen[str]:
    env = dict(
        os.environ, XDG_CONFIG_HOME=str(lab.tmp_path / "config"), PYTHONPATH=str(REPO)
    )
    return subprocess.Popen(
        _command(lab, host, *argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _run(lab: Lab, host: NetworkHost, *argv: str) -> tuple[int, str, str]:
    process = _start(lab, host, *argv)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def _dnsmasq_per_bridge(host: NetworkHost) -> dict[str, int]:
    counts: dict[str, int] = {}
    prefix = f"--pid-file={host.layer.dhcp_dir}/"
    for process in processes.find("dnsmasq", prefix, host.ns):
        bridge = next(w for w in process.argv if w.startswith(prefix))[len(prefix) : -4]
        counts[bridge] = counts.get(bridge, 0) + 1
    return counts


def _change(host: NetworkHost, round_: int) -> None:
    """Something for the host to do in every round: networks arrive, instances come and
    go, floating IPs move."""
    service = host.service
    project = f"p{round_ // 4 % 4}"
    step = round_ % 4
    if step == 0:
        service.launch_instance(project, f"vm{round_}")
    elif step == 1:
        address = service.allocate_floating_ip(project).address
        service.associate_floating_ip(address, f"vm{round_ - 1}")
    elif step == 2:
        service.launch_instance(project, f"vm{round_}")
    else:
        service.terminate_instance(f"vm{round_ - 3}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """The embedded database, or a fresh one on the PostgreSQL server the suite runs."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def test_two_applies_at_once_twenty_times_and_every_later_plan_is_empty(
    lab: Lab, tmp_path: Path, database: str | None
) -> None:
    host = network_host(lab, tmp_path, db_url=database)
    service = host.service
    service.create_networks("10.64.0.0/21", 4, 256)
    for index in range(4):
        service.create_project(f"p{index}")
    service.create_floating_range("nethost", "203.0.113.32/27")
    for round_ in range(ROUNDS):
        _change(host, round_)
        both = [_start(lab, host, "host", "apply", "--netns", host.ns) for _ in range(2)]
        results = [(p.wait(timeout=120), *p.communicate()) for p in both]
        for code, _out, err in results:
            assert code == 0, f"round {round_}: {err.strip()}"
        # One did the work; the other waited its turn and found nothing left to do.
        outputs = sorted(out for _, out, _ in results)
        assert outputs[0] != "nothing to change\n" and outputs[1] == "nothing to change\n", (
            f"round {round_}: {outputs}"
        )
        assert host.sync.plan().operations == (), f"round {round_}"
        counts = _dnsmasq_per_bridge(host)
        assert counts and set(counts.values()) == {1}, f"round {round_}: {counts}"


def test_a_second_apply_is_told_who_holds_the_host(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    host.service.create_networks("10.65.0.0/24", 1, 256)
    host.service.launch_instance("alpha", "vm1")
    lock = ApplyLock.of(lab.state_dir, host.ns, command="the test's own apply")
    with lock.hold(timeout=0):
        code, out, err = _run(lab, host, "host", "apply", "--netns", host.ns, "--no-wait")
        assert (code, out) == (1, "")
        assert err.count("\n") == 1
        assert err.startswith(
            f"netcon: another apply is changing namespace {host.ns}: "
            f"pid {os.getpid()} (the test's own apply) since "
        )

        code, out, err = _run(
            lab, host, "host", "apply", "--netns", host.ns, "--lock-timeout", "1.5"
        )
        assert (code, out) == (1, "")
        waiting, refusal = err.splitlines()
        assert waiting.startswith(
            f"netcon: waiting for another apply, pid {os.getpid()} (the test's own apply) since "
        )
        assert waiting.endswith(": 1 s of 2 s (--lock-timeout)")
        assert refusal.endswith("; gave up after waiting 2 s")

        queued = _start(lab, host, "host", "apply", "--netns", host.ns)
        assert queued.stderr is not None
        # It says whom it waits for once it has waited a second; then it is let go.
        said = queued.stderr.readline()
        assert said.startswith(f"netcon: waiting for another apply, pid {os.getpid()} ")
        assert queued.poll() is None
    out, _ = queued.communicate(timeout=60)
    assert queued.returncode == 0
    assert "create bridge br100" in out
    assert host.sync.plan().operations == ()

    code, _, err = _run(lab, host, "host", "apply", "--netns", host.ns, "--lock-timeout", "x")
    assert code == 2 and "--lock-timeout" in err and err.count("\n") == 1
    code, _, err = _run(
        lab, host, "host", "apply", "--netns", host.ns, "--no-wait", "--lock-timeout", "3"
    )
    assert (code, err) == (2, "netcon: --no-wait: give --no-wait or --lock-timeout, not both\n")


def test_a_failed_apply_takes_back_only_what_it_made(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.66.0.0/24", 1, 256, 100)
    service.launch_instance("alpha", "vm1")
    host.sync.sync()
    before = host.layer.observe()
    kept = {name: before.links[name].index for name in ("br100", "vx100")}
    dnsmasq_pid = before.dnsmasq["br100"].pid

    # A second network whose segment the kernel refuses once the apply is under way
    # (another program's VXLAN link holds its VNI and port: nothing a plan looks at),
    # and a third that it can make.
    in_ns(host.ns, "ip", "link", "add", "vxforeign", "type", "vxlan", "id", "200",
          "dstport", "4789", "dev", "und0", "group", "239.1.1.2")
    service.create_networks("10.66.2.0/24", 1, 256, 300, segmentation="vxlan")
    service.create_networks("10.66.1.0/24", 1, 256, 200, segmentation="vxlan")
    for name in ("beta", "gamma"):
        service.create_project(name)
        service.launch_instance(name, f"{name}-vm")
    with pytest.raises(HostError, match="vx200"):
        host.sync.sync()

    after = host.layer.observe()
    # Its own bridges and links went again; what the earlier apply made is untouched.
    assert not {"br200", "br300", "vx300"} & set(after.links)
    assert {name: after.links[name].index for name in kept} == kept
    assert after.dnsmasq["br100"].pid == dnsmasq_pid
    assert any(a.address == "10.66.0.1" for a in after.addresses)
