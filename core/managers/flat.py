"""Flat: an admin-made bridge; the address is injected into the instance's image."""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row

from core.errors import InvalidInput
from core.managers.base import NetworkManager, NetworkRequest
from core.managers.capabilities import FLAT

if TYPE_CHECKING:
    from core.config import Settings
    from core.views import InjectedConfig


class FlatManager(NetworkManager):
    kind = "flat"
    waits_for_lease = False
    capabilities = FLAT

    def complete_request(self, request: NetworkRequest, settings: Settings) -> NetworkRequest:
        if request.multi_host:
            raise InvalidInput(
                "multi_host", "a flat network has no gateway or DHCP for netcon to serve"
            )
        return super().complete_request(request, settings)


def injected_config(network: Row[Any], fixed: Row[Any], interface: str = "eth0") -> InjectedConfig:
    """The network configuration written into a Flat instance's image at launch.

    On a dual-stack network the IPv6 address is injected static too, as nova-network's
    interfaces template did with ``use_ipv6``: no netcon host serves a Flat bridge, so
    nothing there sends the router adverts or DHCPv6 replies that would tell the guest."""
    # Imported here: the host path loads the managers but makes no views.
    from core.views import InjectedConfig

    dns = [d for d in (network.dns1, network.dns2) if d]
    prefix = ipaddress.IPv4Network(network.cidr).prefixlen
    v6 = fixed.address_v6 is not None and network.cidr_v6 is not None
    prefix_v6 = ipaddress.IPv6Network(network.cidr_v6).prefixlen if v6 else None
    stanza = [
        f"auto {interface}",
        f"iface {interface} inet static",
        f"    address {fixed.address}",
        f"    netmask {network.netmask}",
        f"    broadcast {network.broadcast}",
        f"    gateway {network.gateway}",
    ]
    if dns:
        stanza.append(f"    dns-nameservers {' '.join(dns)}")
    if v6:
        stanza += [
            f"iface {interface} inet6 static",
            f"    address {fixed.address_v6}",
            f"    netmask {prefix_v6}",
            f"    gateway {network.gateway_v6}",
            # The database's address is the guest's only one: an advert from the admin's
            # router must not add a second that the anti-spoofing filter would drop.
            "    autoconf 0",
            "    accept_ra 0",
        ]
    # JSON scalars are valid YAML, so quoting through json keeps the document exact.
    q = json.dumps
    doc = [
        "version: 2",
        "ethernets:",
        f"  {interface}:",
        "    match:",
        f"      macaddress: {q(fixed.mac)}",
        f"    set-name: {interface}",
        "    addresses:",
        f"      - {q(f'{fixed.address}/{prefix}')}",
    ]
    if v6:
        doc.append(f"      - {q(f'{fixed.address_v6}/{prefix_v6}')}")
    doc += [
        "    routes:",
        "      - to: default",
        f"        via: {q(network.gateway)}",
    ]
    if v6:
        doc += ["      - to: \"::/0\"", f"        via: {q(network.gateway_v6)}"]
        doc.append("    accept-ra: false")
    if dns:
        doc += ["    nameservers:", "      addresses:"] + [f"        - {q(d)}" for d in dns]
    return InjectedConfig(interfaces="\n".join(stanza) + "\n", cloud_init="\n".join(doc) + "\n")
