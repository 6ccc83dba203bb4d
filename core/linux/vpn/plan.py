"""The VPN part of the host plan: which servers to start and stop on this host.

Desired: the servers it is handed (core.desired.vpn reads them: every VLAN network
with a project, ``vpn_enabled`` and this host as its network host). Actual: the
servers netcon started (``run.json`` in the project's directory) and whether their
process answers. A server that answers with the
configuration the database asks for is left alone, so a second apply changes nothing.

The operations (StartVpn, StopVpn) are plain host-layer operations that the executor
carries out: StopVpn before links are deleted and StartVpn after bridges exist and
are up, since a server starts only into an existing bridge.
The taps (``tapvpn<segment>``) carry no netcon alias, so link clean-up leaves them to
this module.
"""

from __future__ import annotations

from core.config import Settings
from core.linux.operations import StartVpn, StopVpn, VpnOperation
from core.linux.vpn import server
from core.linux.vpn.server import ServerFiles
from core.linux.vpn.spec import VpnSpec


def operations_for(
    specs: list[VpnSpec], settings: Settings, netns: str | None, *, only: set[str] | None = None
) -> list[VpnOperation]:
    """Operations that make the running servers match ``specs``.

    ``only`` limits the comparison to some projects (``vpn run PROJECT`` touches one).
    """
    wanted = {spec.project: spec for spec in specs}
    started = set(server.started_projects(settings.state_dir, netns))
    # Found by command line: a server whose pid file or run record was lost still
    # holds its port, and is stopped before a new one is started.
    running = server.running_servers(settings.state_dir, netns)
    operations: list[VpnOperation] = []
    for project in sorted(started | set(wanted) | set(running)):
        if only is not None and project not in only:
            continue
        files = ServerFiles(settings.state_dir, project, netns)
        spec = wanted.get(project)
        record = files.running()
        pids = running.get(project, [])
        if spec is None:
            if record is not None or pids:
                operations.append(StopVpn(project, "the database no longer wants it"))
            continue
        if record is None:
            if pids:
                operations.append(StopVpn(project, "it runs without its run record"))
            operations.append(StartVpn(spec))
            continue
        if record.pid is None:
            reason = "it lost its pid file" if pids else "its process is gone"
        elif len(pids) > 1:
            reason = f"{len(pids)} server processes run for it"
        elif not files.answers():
            reason = "it does not answer"
        elif not files.owned_by(spec.owner):
            reason = "it belongs to an earlier project of that name"
        elif _config_text(files) != files.render(spec):
            reason = "its configuration changed"
        else:
            continue
        operations += [StopVpn(project, reason), StartVpn(spec)]
    return operations


def _config_text(files: ServerFiles) -> str | None:
    try:
        return files.config.read_text()
    except OSError:
        return None
