"""netcon's dnsmasq processes: started together, failures named and retried, and found by
what they are when their pid file is gone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.errors import HostError
from core.linux import dnsmasq, processes
from core.service.hostsync import HostSync
from tests.host.conftest import Lab, in_ns, sh
from tests.host.scenario import NetworkHost, network_host

REAL_DNSMASQ = sh("sh", "-c", "command -v dnsmasq").stdout.strip()


def _wrapper(tmp_path: Path, behaviour: str) -> Path:
    """A program named dnsmasq that runs the real one, unless told to fail or to hang for
    a bridge (a file named after it). It keeps its own path as argv[0], as netcon
    expects of the dnsmasq it starts."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    program = folder / "dnsmasq"
    program.write_text(
        "#!/bin/bash\n"
        'bridge=""\n'
        'for word in "$@"; do case "$word" in --pid-file=*) '
        'bridge=$(basename "${word#--pid-file=}" .pid);; esac; done\n'
        f'if [ -e "{folder}/fail-$bridge" ]; then\n'
        '  echo "dnsmasq: refused to serve $bridge for this test" >&2; exit 2\n'
        "fi\n"
        f'if [ -e "{folder}/hang-$bridge" ]; then exec sleep 60; fi\n'
        f'exec -a "$0" {REAL_DNSMASQ} "$@"\n'
    )
    program.chmod(0o755)
    assert behaviour in ("fail", "hang")
    return program


def _three_networks(host: NetworkHost) -> list[str]:
    service = host.service
    service.create_networks("10.60.0.0/22", 3, 256)
    for name in ("alpha", "beta", "gamma"):
        service.create_project(name)
        service.launch_instance(name, f"{name}-vm")
    return sorted(n.bridge for n in service.list_networks())


def _running(host: NetworkHost) -> dict[str, list[int]]:
    """Our dnsmasq processes in the host's namespace, by bridge, from /proc alone."""
    found: dict[str, list[int]] = {}
    prefix = f"--pid-file={host.layer.dhcp_dir}/"
    for process in processes.find("dnsmasq", prefix, host.ns):
        bridge = next(w for w in process.argv if w.startswith(prefix))[len(prefix) : -4]
        found.setdefault(bridge, []).append(process.pid)
    return found


def test_daemons_that_fail_are_named_and_started_by_the_next_apply(
    lab: Lab, tmp_path: Path
) -> None:
    program = _wrapper(tmp_path, "fail")
    host = network_host(lab, tmp_path, dnsmasq_binary=str(program))
    bridges = _three_networks(host)
    for bridge in bridges[1:]:
        (program.parent / f"fail-{bridge}").touch()

    with pytest.raises(HostError) as failed:
        host.sync.sync()
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("2 dnsmasq failed to start: ")
    for bridge in bridges[1:]:
        assert f"{bridge}: dnsmasq: refused to serve {bridge} for this test" in message
    assert f"{bridges[0]}:" not in message
    # The kernel work stays, and the dnsmasq that could start serves.
    assert set(bridges) <= set(host.layer.observe().links)
    assert list(_running(host)) == [bridges[0]]

    for bridge in bridges[1:]:
        (program.parent / f"fail-{bridge}").unlink()
    retried = host.sync.sync().describe()
    assert retried == [f"start dnsmasq for {bridge}" for bridge in bridges[1:]]
    assert sorted(_running(host)) == bridges
    assert host.sync.plan().operations == ()
    address = host.service.get_instance("gamma-vm").instance.addresses[0]
    guest = host.instance("gamma", address.mac, bridges[2])
    assert lab.dhcp_client(guest) == address.address


def test_a_daemon_that_hangs_is_given_up_within_the_bound(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = _wrapper(tmp_path, "hang")
    host = network_host(lab, tmp_path, dnsmasq_binary=str(program))
    bridges = _three_networks(host)
    (program.parent / f"hang-{bridges[1]}").touch()
    monkeypatch.setattr(dnsmasq, "START_TIMEOUT", 2.0)

    with pytest.raises(HostError) as failed:
        host.sync.sync()
    assert str(failed.value) == (
        f"dnsmasq for {bridges[1]} failed to start: did not start within 2 s "
        "(the next apply tries again)"
    )
    assert sorted(_running(host)) == [bridges[0], bridges[2]]
    (program.parent / f"hang-{bridges[1]}").unlink()
    assert host.sync.sync().describe() == [f"start dnsmasq for {bridges[1]}"]
    assert host.sync.plan().operations == ()


def test_a_dnsmasq_that_lost_its_pid_file_is_adopted(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    bridges = _three_networks(host)
    host.sync.sync()
    files = dnsmasq.DhcpFiles(host.layer.dhcp_dir, bridges[0])
    pid = int(files.pid.read_text())
    files.pid.unlink()

    plan = host.sync.plan().describe()
    assert plan == [f"adopt dnsmasq for {bridges[0]} (pid {pid}, which lost its pid file)"]
    host.sync.sync()
    assert int(files.pid.read_text()) == pid
    assert host.sync.plan().operations == ()
    address = host.service.get_instance("alpha-vm").instance.addresses[0]
    assert lab.dhcp_client(host.instance("alpha", address.mac, bridges[0])) == address.address


def test_a_dnsmasq_without_pid_file_is_replaced_not_left_holding_the_socket(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    bridges = _three_networks(host)
    host.sync.sync()
    files = dnsmasq.DhcpFiles(host.layer.dhcp_dir, bridges[0])
    old = int(files.pid.read_text())
    # Its pid file names some other process now (lost, then a recycled pid).
    files.pid.write_text(f"{os.getpid()}\n")
    # And its command line is out of date: it has to be started again, which fails on
    # the DHCP socket unless the old one is found and stopped first.
    changed = HostSync(host.service, settings=host.service.settings.replace(dhcp_lease_time=300))

    assert changed.plan().describe()[0] == f"restart dnsmasq for {bridges[0]}"
    changed.sync()
    running = _running(host)
    assert sorted(running) == bridges and all(len(p) == 1 for p in running.values())
    assert old not in running[bridges[0]]
    assert "120s" not in " ".join(processes.argv_of(running[bridges[0]][0]) or ())
    assert changed.plan().operations == ()


def test_a_dnsmasq_left_in_an_old_namespace_is_stopped(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    bridges = _three_networks(host)
    host.sync.sync()
    files = dnsmasq.DhcpFiles(host.layer.dhcp_dir, bridges[0])
    ours = int(files.pid.read_text())
    argv = tuple(processes.argv_of(ours) or ())
    # The same command line, running in another namespace (as one started before the
    # namespace was deleted and made again would be): not ours to keep.
    old = lab.netns("old")
    in_ns(old, "ip", "link", "add", bridges[0], "type", "bridge")
    in_ns(old, "ip", "addr", "add", "10.60.0.1/24", "dev", bridges[0])
    in_ns(old, "ip", "link", "set", bridges[0], "up")
    in_ns(old, *argv)
    # The stray's own pid goes into the same pid file once it has daemonised; on a busy
    # machine that can come just after its parent returns.
    deadline = time.monotonic() + 10
    while files.pid.read_text().strip() == str(ours):
        assert time.monotonic() < deadline, "the stray dnsmasq never wrote its pid file"
        time.sleep(0.05)
    stray = [p for p in _running(host)[bridges[0]] if p != ours]
    assert len(stray) == 1

    assert host.sync.plan().describe() == [
        f"stop stray dnsmasq for {bridges[0]} (pid {stray[0]}, not the one its pid file names)",
        f"adopt dnsmasq for {bridges[0]} (pid {ours}, which lost its pid file)",
    ]
    host.sync.sync()
    assert _running(host)[bridges[0]] == [ours]
    assert processes.argv_of(stray[0]) is None
    assert host.sync.plan().operations == ()
