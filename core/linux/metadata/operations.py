"""The metadata service's host operations: the server's, the DNAT tables' of both
families, and the IPv6 metadata address on the bridges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from core.linux.metadata.server import launch
from core.linux.metadata.spec import (
    ADDRESS6,
    IPV4,
    PORTS,
    PREFIXLEN6,
    ROUTES,
    Family,
    ServerFiles,
    host_port,
)
from core.linux.nfttable import NftTable
from core.linux.operations import Operation, Phase

if TYPE_CHECKING:
    from core.linux.execution import Execution


@dataclass(frozen=True)
class MetadataHostOperation(Operation):
    """A change of a DNAT table or of the metadata address: the apply's go together
    (table.py), after the segment filter and before the server starts."""

    phase = Phase.METADATA_TABLE

    def execute(self, run: Execution) -> None:
        run.metadata_table.append(self)


@dataclass(frozen=True)
class MetadataTableOperation(MetadataHostOperation):
    """A change of one family's DNAT table: its nft commands go in one batch with the
    other family's."""

    # Whose table it changes (IPv4 unless said).
    family: Family = field(default=IPV4, kw_only=True)
    # What the change leaves of the table (None: as it was), for its marker.
    table_present: ClassVar[bool | None] = None

    @property
    def table(self) -> NftTable:
        return self.family.table

    def commands(self) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class CreateMetadataTable(MetadataTableOperation):
    replace: bool
    table_present = True

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        where = host_port(self.family.address, 80)
        return f"{verb} nftables table {self.table.qualified} (DNAT of {where} for guests)"

    def commands(self) -> list[str]:
        return self.table.create(self.replace)


@dataclass(frozen=True)
class DeleteMetadataTable(MetadataTableOperation):
    table_present = False

    def describe(self) -> str:
        return f"delete nftables table {self.table.qualified} (no network here serves metadata)"

    def commands(self) -> list[str]:
        return self.table.delete()


@dataclass(frozen=True)
class SetMetadataRoute(MetadataTableOperation):
    bridge: str
    gateway: str
    port: int
    # The bridge has a route already, to another place: it goes before the new one.
    replaces: bool = False

    def describe(self) -> str:
        to = host_port(self.gateway, self.port)
        return f"DNAT {host_port(self.family.address, 80)} from guests on {self.bridge} to {to}"

    def commands(self) -> list[str]:
        # 'add' would keep an element's old value.
        lines = [self.table.element(False, ROUTES, f'"{self.bridge}"')] if self.replaces else []
        target = f'"{self.bridge}" : {self.gateway} . {self.port}'
        return [*lines, self.table.element(True, ROUTES, target)]


@dataclass(frozen=True)
class DeleteMetadataRoute(MetadataTableOperation):
    bridge: str

    def describe(self) -> str:
        over = "" if self.family == IPV4 else " IPv6"
        return f"no{over} metadata DNAT for {self.bridge} any more"

    def commands(self) -> list[str]:
        return [self.table.element(False, ROUTES, f'"{self.bridge}"')]


@dataclass(frozen=True)
class SetMetadataPort(MetadataTableOperation):
    port: int
    add: bool

    def describe(self) -> str:
        over = "" if self.family == IPV4 else " over IPv6"
        if self.add:
            return f"let only DNATed connections reach the metadata port {self.port}{over}"
        return f"stop guarding port {self.port}{over} (no longer the metadata port)"

    def commands(self) -> list[str]:
        return [self.table.element(self.add, PORTS, str(self.port))]


@dataclass(frozen=True)
class MetadataAddress6(MetadataHostOperation):
    """fe80::a9fe:a9fe on a bridge (see address.py): a removal goes before the table
    batch and an addition after it, so the table's advert guard is there whenever the
    address is."""

    bridge: str
    add: ClassVar[bool]


@dataclass(frozen=True)
class AddMetadataAddress6(MetadataAddress6):
    add = True

    def describe(self) -> str:
        return f"add address {ADDRESS6}/{PREFIXLEN6} to {self.bridge} (metadata; never preferred)"


@dataclass(frozen=True)
class DeleteMetadataAddress6(MetadataAddress6):
    add = False

    def describe(self) -> str:
        return f"delete address {ADDRESS6}/{PREFIXLEN6} from {self.bridge} (no metadata here)"


@dataclass(frozen=True)
class StartMetadataServer(Operation):
    """Launched once dnsmasq serves (its imports would take the CPU the dnsmasq starts
    need), waited for in the executor's WAIT_METADATA phase."""

    phase = Phase.LAUNCH_METADATA
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    files: ServerFiles
    port: int
    reason: str = ""

    def describe(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"start metadata server on port {self.port}{why}"

    def execute(self, run: Execution) -> None:
        # A server that cannot start is a failure the wait reports: the next apply
        # tries it again.
        run.launched.append(launch(self))


@dataclass(frozen=True)
class StopMetadataServer(Operation):
    phase = Phase.STOP_METADATA
    pids: tuple[int, ...]
    reason: str

    def describe(self) -> str:
        return f"stop metadata server (pid {', '.join(map(str, self.pids))}: {self.reason})"

    def execute(self, run: Execution) -> None:
        run.stopped_servers += self.pids


METADATA_OPS = (MetadataHostOperation, StartMetadataServer, StopMetadataServer)
