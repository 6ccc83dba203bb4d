"""This network host's side: plan and apply the desired state onto the kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import update

from core import validate
from core.service.base import ServiceBase
from core.store.schema import hosts

if TYPE_CHECKING:
    from core.linux.operations import Plan


class HostService(ServiceBase):
    def heartbeat(self, host: str | None = None) -> None:
        """Mark a network host alive; the host layer calls this on every apply."""
        name = validate.host_name("host", host if host is not None else self.settings.host)
        with self.db.write() as connection:
            self._ensure_host(connection, name)
            connection.execute(
                update(hosts).where(hosts.c.name == name).values(last_heartbeat=self.clock())
            )

    def host_plan(self, netns: str | None = None) -> Plan:
        """What `host apply` would change on this host, or in namespace ``netns`` (a rehearsal).

        Reads only: links, addresses, the nftables table and dnsmasq's files.
        """
        from core.linux.host import HostLayer

        layer = HostLayer(self.settings, self.db, netns=netns)
        try:
            return layer.plan()
        finally:
            layer.close()

    def host_apply(self, netns: str | None = None) -> Plan:
        """Make the host match the database; returns what was done. Marks this host alive."""
        from core.linux.host import HostLayer

        layer = HostLayer(self.settings, self.db, netns=netns)
        try:
            done = layer.sync()
        finally:
            layer.close()
        self.heartbeat()
        return done
