"""A network host namespace wired like a real one, for the host tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.linux.host import HostLayer
from core.linux.ports import port_name
from core.service import NetconService
from core.service.hostsync import HostSync
from tests.host.conftest import Lab, make_service

PUBLIC_HOST = "203.0.113.2"
PUBLIC_CLIENT = "203.0.113.1"


@dataclass
class NetworkHost:
    lab: Lab
    ns: str  # the network host
    public: str  # a machine on the public side
    service: NetconService
    # Drives the host from the database, recording nothing (HostSync.sync and plan).
    sync: HostSync

    @property
    def layer(self) -> HostLayer:
        return self.sync.layer

    def instance(self, purpose: str, mac: str, bridge: str, *, hairpin: bool = True) -> str:
        """A namespace plugged into ``bridge`` by a veth, its eth0 carrying ``mac``; the
        host end is named as the compute side names an instance's port."""
        ns = self.lab.netns(purpose)
        self.lab.plug(self.ns, port_name(mac), bridge, ns, mac, hairpin=hairpin)
        return ns


def network_host(
    lab: Lab, tmp_path: Path, purpose: str = "nh", db_url: str | None = None, **settings: Any
) -> NetworkHost:
    ns = lab.netns(purpose)
    public = lab.netns("pub")
    lab.veth(ns, "pub0", public, "eth0")
    lab.address(ns, "pub0", f"{PUBLIC_HOST}/24")
    lab.address(public, "eth0", f"{PUBLIC_CLIENT}/24")
    # The VXLAN underlay: a veth whose other end stays in the same namespace.
    lab.veth(ns, "und0", ns, "und1")
    lab.address(ns, "und0", "192.168.90.1/24")
    service = make_service(lab, db_url, netns=ns, **settings)
    return NetworkHost(lab, ns, public, service, HostSync(service))
