"""What a metadata server should be on this host: its routes in both families, port,
command line, files; and the layout of each family's DNAT table."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from core.config import Settings
from core.linux.desired import DesiredNetwork
from core.linux.nfttable import Chain, NftTable

ADDRESS = "169.254.169.254"
ADDRESS6 = "fe80::a9fe:a9fe"
PREFIXLEN6 = 64
ROUTES = "gateways"
PORTS = "server_port"
# How long an apply waits for a new server to listen before it says it failed.
START_TIMEOUT = 15.0
# The interpreter names the server may run under (the agent and the command line may
# be started through different names of the same Python).
PROGRAMS = frozenset(
    {"python", "python3", f"python3.{sys.version_info.minor}", os.path.basename(sys.executable)}
)


@dataclass(frozen=True)
class Family:
    """One address family's way to the server: the address guests ask and the DNAT
    table that sends them on."""

    address: str
    table: NftTable


def host_port(address: str, port: int) -> str:
    """An address and a port as a URL names them."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _dnat_table(
    family: str, name: str, marker: str, address: str, *more: Chain, address_type: str
) -> NftTable:
    """A family's DNAT table: a map from bridge to (gateway, port), one rule that uses
    it, and a guard that lets only DNATed connections (and the host's own, over
    loopback) reach the server's port, so neither the public side nor a guest
    addressing the gateway directly gets past the DNAT."""
    return NftTable(
        family,
        name,
        marker,
        sets=(
            ("map", ROUTES, f"ifname : {address_type} . inet_service"),
            ("set", PORTS, "inet_service"),
        ),
        chains=(
            Chain(
                "prerouting",
                "type nat hook prerouting priority -100; policy accept;",
                (f"{family} daddr {address} tcp dport 80 dnat {family} to iifname map @{ROUTES}",),
            ),
            Chain(
                "input",
                "type filter hook input priority 0; policy accept;",
                (
                    f"tcp dport @{PORTS} ct status dnat accept",
                    f'tcp dport @{PORTS} iifname != "lo" drop',
                ),
            ),
            *more,
        ),
    )


IPV4 = Family(
    ADDRESS,
    _dnat_table("ip", "netcon_metadata", "metadata/nat-table", ADDRESS, address_type="ipv4_addr"),
)
IPV6 = Family(
    ADDRESS6,
    _dnat_table(
        "ip6",
        "netcon_metadata6",
        "metadata6-table",
        ADDRESS6,
        # No router advert leaves from the metadata address, whatever the kernel picks
        # as source while the bridge's own link-local is still tentative (see address).
        Chain(
            "output",
            "type filter hook output priority 0; policy accept;",
            (f"ip6 saddr {ADDRESS6} icmpv6 type nd-router-advert drop",),
        ),
        address_type="ipv6_addr",
    ),
)
FAMILY = IPV4.table.family
TABLE = IPV4.table.name
TABLE6 = IPV6.table.name


@dataclass(frozen=True, order=True)
class Route:
    """Guests on ``bridge`` are sent to the server at their network's ``gateway`` (of
    the family's address)."""

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

    @property
    def state_dir(self) -> Path:
        """The namespace's state directory, where the DNAT tables' markers are."""
        return self.directory.parent


@dataclass(frozen=True)
class DesiredMetadata:
    routes: tuple[Route, ...]
    port: int
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    files: ServerFiles
    # The IPv6 gateways of the dual-stack networks among them.
    routes6: tuple[Route, ...] = ()


def wanted_routes6(networks: Sequence[DesiredNetwork]) -> tuple[Route, ...]:
    """A route for each network this host serves IPv6 and metadata for (a FlatDHCP or
    VLAN network whose /64 gateway is here)."""
    return tuple(
        sorted(
            Route(n.bridge, n.ipv6.gateway)
            for n in networks
            if n.ipv6 is not None and n.serves_dhcp and n.gateway is not None
        )
    )


def listening_v6(want: DesiredMetadata) -> DesiredMetadata:
    """The server's command line with its IPv6 socket: the same port on every IPv6
    address (only DNATed connections reach it, as over IPv4)."""
    return replace(want, argv=(*want.argv, "--listen-v6", f"[::]:{want.port}"))


def desired(
    routes: tuple[Route, ...],
    settings: Settings,
    state_dir: Path,
    env: dict[str, str],
    netns: str | None,
    routes6: tuple[Route, ...] = (),
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
    env_items = tuple(sorted(env.items()))
    return DesiredMetadata(routes, settings.metadata_port, argv, env_items, files, routes6)


def table_marker(files: ServerFiles, family: Family = IPV4) -> Path:
    """Present once netcon has made the family's DNAT table in this namespace."""
    return family.table.marker(files.state_dir)
