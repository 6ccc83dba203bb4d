"""Settings: nova-network's flags, read from netcon.toml files and overridable per call."""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidInput


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "netcon"


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'netcon.db'}"


def config_paths() -> list[Path]:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path("/etc/netcon/netcon.toml"), Path(base) / "netcon" / "netcon.toml"]


@dataclass(frozen=True)
class Settings:
    # `network create` defaults, as nova-network's flags.
    fixed_range: str = "10.0.0.0/8"
    num_networks: int = 1
    network_size: int = 256
    vlan_start: int = 100
    vpn_start: int = 1000
    # The manager a new project uses unless told otherwise.
    network_manager: str = "vlan"
    segmentation: str = "vlan"
    # Host wiring.
    host: str = field(default_factory=socket.gethostname)
    public_interface: str = "eth0"
    vlan_interface: str = "eth1"
    flat_network_bridge: str = "br100"
    flat_network_dns: str = "8.8.4.4"
    vpn_ip: str | None = None
    cnt_vpn_clients: int = 0
    dhcp_domain: str = "novalocal"
    dhcp_lease_time: int = 120
    # Seconds after release that a still-leased address is taken back anyway.
    fixed_ip_disassociate_timeout: int = 600
    # A host whose heartbeat is older than this is not given new networks.
    host_down_time: int = 60
    default_floating_pool: str = "nova"
    # Per-project quotas; a negative number means no limit.
    quota_floating_ips: int = 10
    quota_fixed_ips: int = 10
    quota_security_groups: int = 10
    quota_security_group_rules: int = 20
    auto_apply: bool = False
    state_dir: str = "/var/lib/netcon"
    # Host layer: the namespace it acts in (None: the process's own), the binaries it
    # runs, and how VXLAN segments find their peers (one multicast group per VNI).
    netns: str | None = None
    dnsmasq_binary: str = "dnsmasq"
    nft_binary: str = "nft"
    vxlan_group: str = "239.1.1.1"
    vxlan_port: int = 4789

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(key: str, value: Any, source: str) -> Any:
    current = _FIELDS[key].type
    wanted: tuple[type, ...]
    if current in ("int", int):
        wanted = (int,)
    elif current in ("bool", bool):
        wanted = (bool,)
    elif current in ("str | None",):
        wanted = (str, type(None))
    else:
        wanted = (str,)
    if isinstance(value, bool) and bool not in wanted:
        raise InvalidInput(f"{source}: {key}", "has the wrong type")
    if not isinstance(value, wanted):
        names = " or ".join(w.__name__ for w in wanted)
        raise InvalidInput(f"{source}: {key}", f"must be {names}")
    return value


def load_settings(paths: list[Path] | None = None, **overrides: Any) -> Settings:
    """Settings from the config files (later files win), then ``overrides``."""
    values: dict[str, Any] = {}
    for path in config_paths() if paths is None else paths:
        if not path.is_file():
            continue
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(str(path), f"is not valid TOML ({exc})") from None
        for key, value in document.items():
            if key in ("contexts", "keys", "console"):
                continue  # the console's own tables: it reads them itself
            if key not in _FIELDS:
                raise InvalidInput(f"{path}: {key}", "is not a known setting")
            values[key] = _coerce(key, value, str(path))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
