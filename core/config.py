"""Settings: nova-network's flags, read from netcon.toml files and overridable per call."""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import ipv6, validate
from core.errors import InvalidInput
from core.paths import config_paths, data_dir, default_database_url

__all__ = [
    "Settings",
    "config_files",
    "config_paths",
    "data_dir",
    "default_database_url",
    "load_settings",
]


@dataclass(frozen=True)
class Settings:
    # `network create` defaults, as nova-network's flags.
    fixed_range: str = "10.0.0.0/8"
    num_networks: int = 1
    network_size: int = 256
    vlan_start: int = 100
    vpn_start: int = 1000
    # IPv6 beside IPv4 (nova-network's fixed_range_v6): each network made gets the next
    # free /64 of it; None: networks are made IPv4-only unless --fixed-range-v6 is given.
    fixed_range_v6: str | None = None
    ipv6_mode: str = "slaac"
    # The manager a new project uses unless told otherwise.
    network_manager: str = "vlan"
    segmentation: str = "vlan"
    # Host wiring.
    host: str = field(default_factory=lambda: os.uname().nodename)
    public_interface: str = "eth0"
    vlan_interface: str = "eth1"
    # This host's link into the bridges of Flat and FlatDHCP networks (ahead of a
    # network's bridge_interface, as nova-network's flat_interface was).
    flat_interface: str | None = None
    flat_network_bridge: str = "br100"
    # The resolver Flat guests are configured with (FlatDHCP and VLAN guests get their
    # network's dnsmasq unless the network names its own).
    flat_network_dns: str = "8.8.4.4"
    vpn_ip: str | None = None
    cnt_vpn_clients: int = 0
    dhcp_domain: str = "novalocal"
    dhcp_lease_time: int = 120
    # Seconds after release that a still-leased address is taken back anyway.
    fixed_ip_disassociate_timeout: int = 600
    # A host whose heartbeat is older than this is shown down, is given no new networks,
    # may be evacuated, and (fencing) stops answering for what it served; its agent
    # heartbeats every heartbeat_interval seconds (None: a quarter of host_down_time),
    # one statement on the database that wakes no host.
    host_down_time: int = 60
    heartbeat_interval: int | None = None
    # Whether gateway and floating addresses last only as long as this host's heartbeat
    # lease: "lease", "off" (forever), or "auto" (lease on PostgreSQL, off on SQLite).
    fencing: str = "auto"
    default_floating_pool: str = "nova"
    # Per-project quotas; a negative number means no limit. Fixed IPs are unlimited by
    # default, as nova-network's were in practice: a project's instances are its quota.
    quota_floating_ips: int = 10
    quota_fixed_ips: int = -1
    quota_security_groups: int = 10
    quota_security_group_rules: int = 20
    auto_apply: bool = False
    # `netcon agent`: re-sync everything this often (seconds) in case a notice was
    # lost, and move a down host's networks to live hosts without a person.
    agent_resync: int = 60
    auto_evacuate: bool = False
    # Wake-ups through a message broker instead of PostgreSQL's NOTIFY, for clouds of
    # more than about 100 hosts ("nats://host:4222", several joined by commas): a change
    # is published on a subject per host it names. While the broker is away, agents look
    # at the change table every bus_poll seconds instead.
    bus: str | None = None
    bus_poll: int = 5
    state_dir: str = "/var/lib/netcon"
    # Host layer: the namespace it acts in (None: the process's own), the binaries it
    # runs, and how VXLAN segments find their peers (one multicast group per VNI).
    netns: str | None = None
    dnsmasq_binary: str = "dnsmasq"
    nft_binary: str = "nft"
    vxlan_group: str = "239.1.1.1"
    vxlan_port: int = 4789
    # Guests: the MTU of the host's physical links (a network's default MTU is this less
    # its segment's overhead), and the resolvers each network's dnsmasq forwards names it
    # does not know to (empty: this host's own, from /etc/resolv.conf).
    physical_mtu: int = 1500
    dns_servers: tuple[str, ...] = ()
    # The port of this host's metadata server; guests reach it as 169.254.169.254:80.
    metadata_port: int = 8775
    # Ports on netcon's bridges that pass frames though no instance or network owns them
    # (every other unknown port passes nothing).
    trusted_ports: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# Tables of netcon.toml that belong to the console, not to these settings.
CONSOLE_TABLES = ("contexts", "keys", "console")


def _choice(*allowed: str) -> Callable[[str, Any], Any]:
    def check(field: str, value: Any) -> Any:
        if value not in allowed:
            raise InvalidInput(
                field, f"{validate.shown(value)} must be one of {', '.join(allowed)}"
            )
        return value

    return check


def _at_least(low: int, high: int = 2**31 - 1) -> Callable[[str, Any], Any]:
    return lambda field, value: validate.integer(field, value, low, high)


def _address_or_none(field: str, value: Any) -> Any:
    return None if value is None else str(validate.ipv4_address(field, value))


def _multicast(field: str, value: Any) -> Any:
    address = validate.ipv4_address(field, value)
    if not address.is_multicast:
        raise InvalidInput(field, f"{address} must be a multicast address (224.0.0.0/4)")
    return str(address)


def _bus(field: str, value: Any) -> Any:
    if value is None:
        return None
    from core.bus import bus_url  # only where a broker is set: it costs at start-up

    return bus_url(field, value)


def _namespace(field: str, value: Any) -> Any:
    if value is None:
        return None
    return validate.ifname(field, value)


# Each setting is checked when read, by the same rules as the command line's options:
# a setting reaches dnsmasq's files, nftables and the host's links.
CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "fixed_range": lambda f, v: str(validate.usable_network(f, v)),
    "num_networks": _at_least(1, 4094),
    "network_size": lambda f, v: validate.network_size(f, v, 4),
    "vlan_start": _at_least(1, 16_777_215),
    "vpn_start": validate.port,
    "fixed_range_v6": lambda f, v: None if v is None else str(ipv6.ipv6_range(f, v)),
    "ipv6_mode": ipv6.mode,
    "network_manager": _choice("flat", "flatdhcp", "vlan"),
    "segmentation": _choice("vlan", "vxlan"),
    "host": validate.host_name,
    "public_interface": validate.ifname,
    "vlan_interface": validate.ifname,
    "flat_interface": lambda f, v: None if v is None else validate.ifname(f, v),
    "flat_network_bridge": validate.ifname,
    "flat_network_dns": lambda f, v: v and str(validate.ipv4_address(f, v)),
    "vpn_ip": _address_or_none,
    "cnt_vpn_clients": _at_least(0, 4096),
    "dhcp_domain": validate.domain,
    # dnsmasq refuses leases shorter than two minutes.
    "dhcp_lease_time": _at_least(120),
    "fixed_ip_disassociate_timeout": _at_least(0),
    "host_down_time": _at_least(1),
    "fencing": _choice("auto", "lease", "off"),
    "heartbeat_interval": lambda f, v: None if v is None else validate.integer(f, v, 1, 86400),
    "default_floating_pool": validate.name,
    "quota_floating_ips": _at_least(-1),
    "quota_fixed_ips": _at_least(-1),
    "quota_security_groups": _at_least(-1),
    "quota_security_group_rules": _at_least(-1),
    "auto_apply": lambda f, v: v,
    "agent_resync": _at_least(1, 86400),
    "auto_evacuate": lambda f, v: v,
    "bus": _bus,
    "bus_poll": _at_least(1, 3600),
    "state_dir": validate.state_directory,
    "netns": _namespace,
    "dnsmasq_binary": validate.program,
    "nft_binary": validate.program,
    "vxlan_group": _multicast,
    "vxlan_port": validate.port,
    "physical_mtu": _at_least(validate.MIN_MTU, 65535),
    "dns_servers": lambda f, v: tuple(str(validate.ipv4_address(f, item)) for item in v),
    "metadata_port": validate.port,
    "trusted_ports": lambda f, v: tuple(validate.ifname(f, item) for item in v),
}


def _coerce(key: str, value: Any, source: str) -> Any:
    current = _FIELDS[key].type
    wanted: tuple[type, ...]
    if current in ("int", int):
        wanted = (int,)
    elif current in ("bool", bool):
        wanted = (bool,)
    elif current in ("str | None",):
        wanted = (str, type(None))
    elif current in ("int | None",):
        wanted = (int, type(None))
    elif current in ("tuple[str, ...]",):
        wanted = (list, tuple)
    else:
        wanted = (str,)
    field_name = f"{source}: {key}"
    if isinstance(value, bool) and bool not in wanted:
        raise InvalidInput(field_name, "has the wrong type")
    if not isinstance(value, wanted):
        names = " or ".join(w.__name__ for w in wanted)
        raise InvalidInput(field_name, f"must be {names}")
    check = CHECKS.get(key)
    return value if check is None else check(field_name, value)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput(str(path), "is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(str(path), f"is not valid TOML ({exc})") from None


def config_files(paths: list[Path] | None = None) -> list[Path]:
    """The settings files that are there, of ``paths`` (default: every place netcon reads).

    A file that is missing is skipped; a path that is there but is no file (a directory,
    a link to nothing, one that cannot be looked at) is an error naming it, never
    skipped: the defaults would then be used without a word."""
    found = []
    for path in config_paths() if paths is None else paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            if path.is_symlink():
                raise InvalidInput(
                    str(path), f"is a link to {os.readlink(path)}, which does not exist"
                ) from None
            continue
        except NotADirectoryError:
            continue
        except OSError as exc:
            raise InvalidInput(str(path), f"cannot be read ({exc.strerror})") from None
        if stat.S_ISDIR(info.st_mode):
            raise InvalidInput(str(path), "is a directory, not a settings file")
        found.append(path)
    return found


def load_settings(paths: list[Path] | None = None, **overrides: Any) -> Settings:
    """Settings from the config files (later files win), then ``overrides``."""
    values: dict[str, Any] = {}
    for path in config_files(paths):
        for key, value in _read(path).items():
            if key in CONSOLE_TABLES:
                continue  # the console's own tables: it reads them itself
            if key not in _FIELDS:
                raise InvalidInput(f"{path}: {validate.shown(key)[1:-1]}", "is not a known setting")
            values[key] = _coerce(key, value, str(path))
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(key, value, "settings") if key in _FIELDS else value
    return Settings(**values)
