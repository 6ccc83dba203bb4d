"""Project VPNs through the service, for real: OpenVPN in namespaces the test makes."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute, netns
from sqlalchemy import func, select, update

from core.config import load_settings
from core.errors import Conflict, HostError, InvalidInput, NotFound
from core.linux.operations import Operation, Plan, StartVpn
from core.linux.scope import Scope
from core.linux.vpn import server
from core.linux.vpn.server import ServerFiles
from core.service import NetconService
from core.service.hostsync import HostSync
from core.store.schema import audit_events, fixed_ips, networks
from core.views import HostView
from tests.vpn.lab import PUBLIC_HOST, Lab, pid_alive, wait_for

PORT = 11940
HOST = "nc-test-nethost"
# Refusals are expected before any host work; should one slip through, a namespace that
# does not exist stops it there instead of letting it touch this machine's own network.
NO_NETNS = "nc-none-0000"


@pytest.fixture
def cloud(tmp_path: Path, state_dir: Path) -> Iterator[NetconService]:
    settings = load_settings(
        [],
        vpn_ip=PUBLIC_HOST,
        state_dir=str(state_dir),
        host=HOST,
        cnt_vpn_clients=5,
    )
    service = NetconService(f"sqlite:///{tmp_path / 'netcon.db'}", settings, actor="test")
    # Two VLAN networks: alpha gets 10.77.0.0/24 (br177), beta 10.77.1.0/24 (br178).
    service.create_networks("10.77.0.0/16", 2, 256, 177, PORT)
    for project in ("alpha", "beta"):
        service.create_project(project)
        service.launch_instance(project, f"{project}-web")
    service.create_project("idle")  # VLAN project that never launched: no network yet
    yield service
    service.db.dispose()


@pytest.fixture
def running(cloud: NetconService, lab: Lab) -> Iterator[tuple[NetconService, Lab]]:
    # netcon configured to act in the lab's network-host namespace, as `netns` in
    # netcon.toml does; the tests still pass it explicitly where the CLI would.
    service = NetconService(cloud.db.url, cloud.settings.replace(netns=lab.host), actor="test")
    try:
        yield service, lab
    finally:
        service.db.dispose()
        for project in ("alpha", "beta"):
            files = ServerFiles(service.settings.state_dir, project, lab.host)
            if files.running() is not None:
                server.stop(files)


def _vpn_plan(service: NetconService, netns: str) -> list[Operation]:
    """The VPN part of a host plan: the servers of every project, nothing else."""
    with HostSync(service, netns=netns) as sync:
        return list(sync.plan(Scope(vpns=frozenset({"alpha", "beta"}))).operations)


def _apply(service: NetconService, netns: str, operations: list[Operation]) -> None:
    with HostSync(service, netns=netns) as sync:
        sync.layer.apply(Plan(operations=tuple(operations)))


def _audit_count(service: NetconService) -> int:
    with service.db.read() as connection:
        return int(connection.execute(select(func.count(audit_events.c.id))).scalar() or 0)


def _enabled(service: NetconService, project: str) -> bool:
    return {v.project: v.state for v in service.list_vpns()}[project] != "off"


def _states(service: NetconService, netns: str | None = None) -> dict[str | None, str]:
    return {v.project: v.state for v in service.list_vpns(netns)}


def _server_log(service: NetconService) -> str:
    return ServerFiles(service.settings.state_dir, "alpha", service.settings.netns).log.read_text(
        errors="replace"
    )


def _host_record(service: NetconService) -> HostView:
    return {h.name: h for h in service.list_hosts()}[HOST]


def _links(namespace: str) -> set[str]:
    with IPRoute(netns=namespace) as ipr:
        return {link.get("ifname") for link in ipr.link("dump")}


def test_run_connect_and_reach_the_instance(running: tuple[NetconService, Lab]) -> None:
    service, lab = running
    assert _states(service)["alpha"] == "off"

    steps = service.run_vpn("alpha", lab.host)

    assert steps and steps[0].startswith("start VPN of project alpha on udp 192.0.2.1:11940")
    assert _states(service)["alpha"] == "up"
    assert _states(service)["beta"] == "off"
    assert "tapvpn177" in _links(lab.host)
    client = lab.start_client("alice", service.vpn_client_config("alpha", "alice"))
    wait_for(client.connected, "alice's tunnel")
    assert lab.http_get_from_remote() == "hello from the instance\n"

    # The client pool is reserved so no instance is ever given a client's address.
    with service.db.read() as connection:
        pool = (
            connection.execute(
                select(fixed_ips.c.reserved).where(
                    fixed_ips.c.address.in_([f"10.77.0.{n}" for n in range(250, 255)])
                )
            )
            .scalars()
            .all()
        )
    assert pool == [True] * 5


def test_reapply_with_a_running_vpn_changes_nothing(running: tuple[NetconService, Lab]) -> None:
    service, lab = running
    service.run_vpn("alpha", lab.host)
    files = ServerFiles(service.settings.state_dir, "alpha", service.settings.netns)
    pid = files.live_pid()
    audits = _audit_count(service)

    assert _vpn_plan(service, lab.host) == []
    assert service.run_vpn("alpha", lab.host) == []
    assert files.live_pid() == pid
    # Nothing changed, so nothing is recorded either.
    assert _audit_count(service) == audits


def test_plan_restarts_a_dead_server_and_stops_an_unwanted_one(
    running: tuple[NetconService, Lab],
) -> None:
    service, lab = running
    service.run_vpn("alpha", lab.host)
    files = ServerFiles(service.settings.state_dir, "alpha", service.settings.netns)
    old = files.live_pid()
    assert old is not None

    os.kill(old, signal.SIGKILL)
    wait_for(lambda: files.live_pid() is None, "the killed server to go")
    assert _states(service)["alpha"] == "down"
    operations = _vpn_plan(service, lab.host)
    assert [op.describe() for op in operations] == [
        "stop VPN of project alpha (its process is gone)",
        operations[1].describe(),
    ]
    assert isinstance(operations[1], StartVpn)
    _apply(service, lab.host, operations)
    assert _states(service)["alpha"] == "up"
    assert files.live_pid() not in (None, old)

    # The database stops wanting it behind the CLI's back: apply stops it.
    with service.db.write() as connection:
        connection.execute(update(networks).where(networks.c.vlan == 177).values(vpn_enabled=False))
    operations = _vpn_plan(service, lab.host)
    assert [op.describe() for op in operations] == [
        "stop VPN of project alpha (the database no longer wants it)"
    ]
    _apply(service, lab.host, operations)
    assert _states(service)["alpha"] == "off"
    assert "tapvpn177" not in _links(lab.host)
    assert _vpn_plan(service, lab.host) == []


def test_a_server_that_lost_its_files_is_found_by_what_it_is(
    running: tuple[NetconService, Lab],
) -> None:
    service, lab = running
    service.run_vpn("alpha", lab.host)
    files = ServerFiles(service.settings.state_dir, "alpha", lab.host)
    old = files.live_pid()
    assert old is not None
    # Without its pid file and run record it still holds its port: a new server would
    # fail on it, so the old one is stopped first.
    files.pid.unlink()
    files.record.unlink()
    operations = _vpn_plan(service, lab.host)
    assert [op.describe() for op in operations][0] == (
        "stop VPN of project alpha (it runs without its run record)"
    )
    _apply(service, lab.host, operations)
    assert not pid_alive(old)
    new = files.live_pid()
    assert new not in (None, old)
    assert server.running_servers(service.settings.state_dir, lab.host) == {"alpha": [new]}
    assert _states(service, lab.host)["alpha"] == "up"
    assert _vpn_plan(service, lab.host) == []


def test_state_is_up_only_while_the_server_answers(running: tuple[NetconService, Lab]) -> None:
    service, lab = running
    service.run_vpn("alpha", lab.host)
    pid = ServerFiles(service.settings.state_dir, "alpha", service.settings.netns).live_pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        # Alive but frozen: the process exists, yet nothing answers.
        assert _states(service)["alpha"] == "unresponsive"
        reasons = [op.describe() for op in _vpn_plan(service, lab.host)]
        assert reasons[0] == "stop VPN of project alpha (it does not answer)"
    finally:
        os.kill(pid, signal.SIGCONT)
    # Once it runs again it works through the probes that queued up, then answers.
    wait_for(lambda: _states(service)["alpha"] == "up", "the thawed server to answer")


def test_stop_takes_the_server_and_tap_away(running: tuple[NetconService, Lab]) -> None:
    service, lab = running
    service.run_vpn("alpha", lab.host)
    pid = ServerFiles(service.settings.state_dir, "alpha", service.settings.netns).live_pid()

    assert service.stop_vpn("alpha") == [
        "stop VPN of project alpha (the database no longer wants it)"
    ]

    assert _states(service)["alpha"] == "off"
    assert pid is not None and not pid_alive(pid)
    assert "tapvpn177" not in _links(lab.host)
    assert _vpn_plan(service, lab.host) == []
    assert service.stop_vpn("alpha") == ["VPN of project alpha is not running"]


def test_spawn_runs_every_vlan_project(running: tuple[NetconService, Lab]) -> None:
    service, lab = running
    # beta's bridge, as the host layer would make it.
    with IPRoute(netns=lab.host) as ipr:
        ipr.link("add", ifname="br178", kind="bridge", state="up")

    steps = service.spawn_vpns(lab.host)

    assert len(steps) == 2
    assert _states(service) == {"alpha": "up", "beta": "up"}
    assert service.spawn_vpns(lab.host) == []


def test_spawn_starts_what_it_can_and_leaves_the_rest_pending(
    running: tuple[NetconService, Lab],
) -> None:
    service, lab = running
    audits = _audit_count(service)
    # No br178 for beta: alpha's server starts, beta's cannot, and stays wanted.
    with pytest.raises(HostError, match="bridge br178 does not exist") as failed:
        service.spawn_vpns(lab.host)
    assert "pending on host nc-test-nethost" in str(failed.value)
    assert _states(service) == {"alpha": "up", "beta": "down"}
    assert _audit_count(service) == audits + 1
    assert "bridge br178" in (_host_record(service).last_error or "")
    assert _host_record(service).pending > 0

    # Once the bridge is there, the next apply starts beta; nothing else changes.
    with IPRoute(netns=lab.host) as ipr:
        ipr.link("add", ifname="br178", kind="bridge", state="up")
    assert [op.describe().split(" on udp")[0] for op in _vpn_plan(service, lab.host)] == [
        "start VPN of project beta"
    ]
    _apply(service, lab.host, _vpn_plan(service, lab.host))
    assert _states(service) == {"alpha": "up", "beta": "up"}
    assert _vpn_plan(service, lab.host) == []


def _refused(service: NetconService, lab: Lab, name: str, ovpn: str, evidence: str) -> None:
    before = _server_log(service).count(evidence)
    client = lab.start_client(name, ovpn)
    wait_for(lambda: _server_log(service).count(evidence) > before, f"server to refuse {name}")
    assert not client.connected()
    lab.stop_client(client)


def test_other_projects_and_revoked_clients_are_refused(
    running: tuple[NetconService, Lab],
) -> None:
    service, lab = running
    service.run_vpn("alpha", lab.host)
    alpha_alice = service.vpn_client_config("alpha", "alice")
    beta_bob = service.vpn_client_config("beta", "bob")

    # beta's whole file, aimed at alpha's server: its tls-crypt key is beta's.
    aimed = beta_bob.replace(f"remote {PUBLIC_HOST} {PORT + 1}", f"remote {PUBLIC_HOST} {PORT}")
    assert aimed != beta_bob
    _refused(service, lab, "bob-whole", aimed, "tls-crypt unwrapping failed")

    # beta's certificate with alpha's tls-crypt key and CA: the CA check refuses it.
    def block(text: str, tag: str) -> str:
        return text[text.index(f"<{tag}>") : text.index(f"</{tag}>") + len(tag) + 3]

    hybrid = alpha_alice.replace(block(alpha_alice, "cert"), block(beta_bob, "cert")).replace(
        block(alpha_alice, "key"), block(beta_bob, "key")
    )
    _refused(service, lab, "bob-hybrid", hybrid, "VERIFY ERROR")

    # alice works, then is revoked: the running server refuses her from then on.
    alice = lab.start_client("alice", alpha_alice)
    wait_for(alice.connected, "alice's tunnel")
    lab.stop_client(alice)
    service.revoke_vpn_user("alpha", "alice")
    _refused(service, lab, "alice-again", alpha_alice, "certificate revoked")

    # A new certificate for alice is a new serial, not on the list.
    renewed = lab.start_client("alice-new", service.vpn_client_config("alpha", "alice"))
    wait_for(renewed.connected, "alice's renewed tunnel")


def _assert_nothing_made(service: NetconService, lab: Lab, audits: int) -> None:
    assert _audit_count(service) == audits
    assert _states(service)["alpha"] == "off"
    assert "tapvpn177" not in _links(lab.host)
    assert (
        ServerFiles(service.settings.state_dir, "alpha", service.settings.netns).running() is None
    )


def _assert_left_pending(service: NetconService, lab: Lab, audits: int) -> None:
    """The change is made and wanted, nothing of a server is left on the host, and the
    host's records show the change pending with the apply's error."""
    assert _audit_count(service) == audits + 1
    assert _states(service)["alpha"] == "down"
    assert "tapvpn177" not in _links(lab.host)
    assert (
        ServerFiles(service.settings.state_dir, "alpha", service.settings.netns).running() is None
    )
    record = _host_record(service)
    assert record.pending > 0 and record.last_error


def test_port_already_taken_is_refused_and_leaves_nothing(
    running: tuple[NetconService, Lab],
) -> None:
    service, lab = running
    audits = _audit_count(service)
    netns.pushns(lab.host)
    try:
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    finally:
        netns.popns()
    with squatter:
        squatter.bind((PUBLIC_HOST, PORT))
        with pytest.raises(HostError, match=r"UDP 192\.0\.2\.1:11940 is already taken"):
            service.run_vpn("alpha", lab.host)
    _assert_nothing_made(service, lab, audits)


def test_a_missing_namespace_is_refused_and_a_missing_bridge_left_pending(
    running: tuple[NetconService, Lab],
) -> None:
    service, lab = running
    audits = _audit_count(service)
    with pytest.raises(InvalidInput, match="--netns: network namespace 'nc-none-0000'"):
        service.run_vpn("alpha", "nc-none-0000")
    assert "nc-none-0000" not in netns.listnetns()
    _assert_nothing_made(service, lab, audits)

    # The bridge is the network's, which an apply of the network makes: the VPN is
    # wanted all the same, and starts once the bridge is there.
    with IPRoute(netns=lab.host) as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname=lab.bridge)[0])
    with pytest.raises(HostError, match="bridge br177 does not exist in namespace"):
        service.run_vpn("alpha", lab.host)
    _assert_left_pending(service, lab, audits)
    with IPRoute(netns=lab.host) as ipr:
        ipr.link("add", ifname=lab.bridge, kind="bridge", state="up")
    assert service.run_vpn("alpha", lab.host)[0].startswith("start VPN of project alpha")
    assert _states(service)["alpha"] == "up"
    assert _host_record(service).last_error is None


def test_bad_projects_are_refused_with_one_line(cloud: NetconService) -> None:
    audits = _audit_count(cloud)
    with pytest.raises(NotFound, match="project: no project named 'ghost'"):
        cloud.run_vpn("ghost", NO_NETNS)
    with pytest.raises(Conflict, match="project: idle has no VLAN network"):
        cloud.run_vpn("idle", NO_NETNS)
    with pytest.raises(Conflict, match="idle has no VLAN network"):
        cloud.vpn_client_config("idle", "alice")
    with pytest.raises(InvalidInput, match="project"):
        cloud.stop_vpn("../alpha")
    assert _audit_count(cloud) == audits
    assert not (Path(cloud.settings.state_dir) / "vpn").exists()


@pytest.mark.parametrize("user", ["../alpha", "a/b", ".hidden", "", "x" * 64, "bob smith"])
def test_unsafe_user_names_are_refused(cloud: NetconService, user: str) -> None:
    audits = _audit_count(cloud)
    with pytest.raises(InvalidInput, match="^user: "):
        cloud.vpn_client_config("alpha", user)
    with pytest.raises(InvalidInput, match="^user: "):
        cloud.revoke_vpn_user("alpha", user)
    assert _audit_count(cloud) == audits
    assert not (Path(cloud.settings.state_dir) / "vpn").exists()


def test_revoking_an_unknown_user_is_refused(cloud: NetconService) -> None:
    with pytest.raises(NotFound, match="user: 'carol' has no certificate in project alpha"):
        cloud.revoke_vpn_user("alpha", "carol")
    cloud.vpn_client_config("alpha", "carol")
    cloud.revoke_vpn_user("alpha", "carol")
    with pytest.raises(NotFound, match="'carol' has no certificate"):
        cloud.revoke_vpn_user("alpha", "carol")


def test_a_client_in_the_pool_is_a_conflict(cloud: NetconService) -> None:
    with cloud.db.write() as connection:
        network_id = connection.execute(
            select(networks.c.id).where(networks.c.vlan == 177)
        ).scalar_one()
        holder = connection.execute(
            select(fixed_ips.c.instance_id).where(
                fixed_ips.c.network_id == network_id, fixed_ips.c.instance_id.is_not(None)
            )
        ).scalar()
        connection.execute(
            update(fixed_ips)
            .where(fixed_ips.c.address == "10.77.0.250")
            .values(reserved=False, instance_id=holder)
        )
    with pytest.raises(Conflict, match=r"10\.77\.0\.250 in the VPN client pool"):
        cloud.run_vpn("alpha", NO_NETNS)


def _ca_block(ovpn: str) -> str:
    return ovpn[ovpn.index("<ca>") : ovpn.index("</ca>")]


def test_a_project_made_again_under_the_same_name_gets_a_new_ca(cloud: NetconService) -> None:
    old = cloud.vpn_client_config("alpha", "alice")
    assert cloud.vpn_client_config("alpha", "alice") == old
    cloud.terminate_instance("alpha-web")
    cloud.delete_project("alpha")
    cloud.create_project("alpha")
    cloud.launch_instance("alpha", "alpha-web2")

    new = cloud.vpn_client_config("alpha", "alice")

    assert _ca_block(new) != _ca_block(old)
    retired = [p.name for p in (Path(cloud.settings.state_dir) / "vpn").iterdir()]
    assert any(name.startswith(".retired-alpha-") for name in retired)


def test_a_server_that_fails_to_start_leaves_no_process_and_stays_pending(
    running: tuple[NetconService, Lab],
) -> None:
    service, lab = running
    audits = _audit_count(service)
    files = ServerFiles(service.settings.state_dir, "alpha", lab.host)
    files.pki.ensure_server()
    files.pki.server_key_path.write_text("not a key\n")

    with pytest.raises(HostError, match="openvpn for project alpha .*private key") as refused:
        service.run_vpn("alpha", lab.host)

    assert "\n" not in str(refused.value)
    _assert_left_pending(service, lab, audits)
    assert not [
        line for line in os.popen("ps -eo cmd").read().splitlines() if str(files.config) in line
    ]


def test_a_vpn_on_another_host_is_pending_until_that_host_applies_it(
    cloud: NetconService,
) -> None:
    cloud.heartbeat("nc-other-host")
    cloud.modify_network("10.77.0.0/24", host="nc-other-host")

    assert cloud.run_vpn("alpha", NO_NETNS) == [
        "VPN of project alpha is wanted on host nc-other-host"
    ]
    assert _states(cloud)["alpha"] == "pending on nc-other-host"
    # Only the VPN's host owes it, not the compute host of the project's instance.
    assert cloud.last_change is not None and cloud.last_change.hosts == {"nc-other-host"}
    # Its agent applies what it owes and says so.
    owed = cloud.pending_for("nc-other-host")
    cloud.record_applied("nc-other-host", max(owed.changes))
    assert _states(cloud)["alpha"] == "on nc-other-host"

    assert cloud.stop_vpn("alpha", NO_NETNS) == [
        "VPN of project alpha is no longer wanted on host nc-other-host"
    ]
    assert _states(cloud)["alpha"] == "pending on nc-other-host"
    cloud.record_applied("nc-other-host", max(cloud.pending_for("nc-other-host").changes))
    assert _states(cloud)["alpha"] == "off"
    # Nothing was started or made on this host.
    assert not (Path(cloud.settings.state_dir) / "host").exists()
