"""What a metadata server should be on this host: its routes, port, command line, files."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings

ADDRESS = "169.254.169.254"
FAMILY = "ip"
TABLE = "netcon_metadata"
ROUTES = "gateways"
PORTS = "server_port"
CHAINS = {"prerouting": 1, "input": 2}
# How long an apply waits for a new server to listen before it says it failed.
START_TIMEOUT = 15.0
# The interpreter names the server may run under (the agent and the command line may
# be started through different names of the same Python).
PROGRAMS = frozenset(
    {"python", "python3", f"python3.{sys.version_info.minor}", os.path.basename(sys.executable)}
)


@dataclass(frozen=True)
class Route:
    """Guests on ``bridge`` are sent to the server at their network's ``gateway``."""

    bridge: str
    gateway: str


@dataclass(frozen=True)
class ServerFiles:
    directory: Path

    @property
    def pid(self) -> Path:
        return self.directory / "server.pid"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"


@dataclass(frozen=True)
class DesiredMetadata:
    routes: tuple[Route, ...]
    port: int
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    files: ServerFiles


def desired(
    routes: tuple[Route, ...],
    settings: Settings,
    state_dir: Path,
    env: dict[str, str],
    netns: str | None,
) -> DesiredMetadata:
    files = ServerFiles(state_dir / "metadata")
    argv = (
        sys.executable,
        "-m",
        "core.metadata",
        "--listen",
        f"0.0.0.0:{settings.metadata_port}",
        "--pid-file",
        str(files.pid),
        "--dhcp-domain",
        settings.dhcp_domain,
        "--physical-mtu",
        str(settings.physical_mtu),
        *(("--netns", netns) if netns else ()),
    )
    return DesiredMetadata(routes, settings.metadata_port, argv, tuple(sorted(env.items())), files)


def table_marker(files: ServerFiles) -> Path:
    """Present once netcon has made the DNAT table in this namespace."""
    return files.directory / "nat-table"
