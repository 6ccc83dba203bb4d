"""The security-group filter this host must have (read by core.desired.secgroups, inside
the one transaction that reads the host's desired state).

A host filters the ports of the instances placed on it: each port by its name (see
ports.py), MAC and fixed IP, plus the rules of every group those instances are in and
the members of every group those rules name as a source (wherever those members run).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FilteredPort:
    name: str
    instance: str
    mac: str
    address: str
    groups: tuple[int, ...]  # ids, ascending
    # Its global IPv6 address on a dual-stack network (None: IPv4 only).
    address_v6: str | None = None


@dataclass(frozen=True)
class GroupRule:
    id: int
    protocol: str
    from_port: int
    to_port: int
    cidr: str | None
    source: int | None  # the source group's id
    ethertype: str = "IPv4"  # the family it judges


@dataclass(frozen=True)
class FilteredGroup:
    id: int
    label: str  # project/name
    rules: tuple[GroupRule, ...]


@dataclass(frozen=True)
class SourceGroup:
    id: int
    label: str
    members: tuple[tuple[str, str], ...]  # (fixed address, instance), by address
    # (IPv6 address, instance) of the members on dual-stack networks, by address.
    members_v6: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DesiredFilter:
    ports: tuple[FilteredPort, ...] = ()
    groups: tuple[FilteredGroup, ...] = ()
    sources: tuple[SourceGroup, ...] = ()
    # The dnsmasq addresses (gateways) of the networks these ports are on.
    dhcp_servers: tuple[str, ...] = ()

    @property
    def keyed(self) -> bool:
        """Whether this is only the part a change names (keyed.KeyedFilter)."""
        return False

    def labels(self) -> dict[int, str]:
        found = {g.id: g.label for g in self.sources}
        found.update((g.id, g.label) for g in self.groups)
        return found

    def label(self, group_id: int) -> str:
        return self.labels().get(group_id, f"group {group_id}")
