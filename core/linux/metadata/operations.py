"""The metadata service's host operations: the DNAT table's and the server's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.linux.metadata.server import launch
from core.linux.metadata.spec import ADDRESS, FAMILY, TABLE, ServerFiles
from core.linux.operations import Operation, Phase

if TYPE_CHECKING:
    from core.linux.execution import Execution


@dataclass(frozen=True)
class MetadataTableOperation(Operation):
    """A change of the DNAT table: the apply's go as one nft script (table.py)."""

    phase = Phase.METADATA_TABLE

    def execute(self, run: Execution) -> None:
        run.metadata_table.append(self)


@dataclass(frozen=True)
class CreateMetadataTable(MetadataTableOperation):
    replace: bool
    files: ServerFiles

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return f"{verb} nftables table {FAMILY} {TABLE} (DNAT of {ADDRESS}:80 for guests)"


@dataclass(frozen=True)
class DeleteMetadataTable(MetadataTableOperation):
    files: ServerFiles

    def describe(self) -> str:
        return f"delete nftables table {FAMILY} {TABLE} (no network here serves metadata)"


@dataclass(frozen=True)
class SetMetadataRoute(MetadataTableOperation):
    bridge: str
    gateway: str
    port: int
    # The bridge has a route already, to another place: it goes before the new one.
    replaces: bool = False

    def describe(self) -> str:
        return f"DNAT {ADDRESS}:80 from guests on {self.bridge} to {self.gateway}:{self.port}"


@dataclass(frozen=True)
class DeleteMetadataRoute(MetadataTableOperation):
    bridge: str

    def describe(self) -> str:
        return f"no metadata DNAT for {self.bridge} any more"


@dataclass(frozen=True)
class SetMetadataPort(MetadataTableOperation):
    port: int
    add: bool

    def describe(self) -> str:
        if self.add:
            return f"let only DNATed connections reach the metadata port {self.port}"
        return f"stop guarding port {self.port} (no longer the metadata port)"


@dataclass(frozen=True)
class StartMetadataServer(Operation):
    """Launched before the announcements and dnsmasq, waited for after them (the
    executor's WAIT_METADATA phase)."""

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


TABLE_OPS = (
    CreateMetadataTable,
    DeleteMetadataTable,
    SetMetadataRoute,
    DeleteMetadataRoute,
    SetMetadataPort,
)
METADATA_OPS = (*TABLE_OPS, StartMetadataServer, StopMetadataServer)
