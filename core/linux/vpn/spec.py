"""What one project's VPN server should look like, derived from its VLAN network."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from core.errors import Conflict

# nova-network's cnt_vpn_clients defaults to 0, which would leave bridged clients no
# address at all; a project VPN that is switched on gets this many instead.
DEFAULT_VPN_CLIENTS = 5
TAP_PREFIX = "tapvpn"


@dataclass(frozen=True)
class VpnSpec:
    project: str
    network_id: int
    cidr: str
    bridge: str
    tap: str
    public_address: str | None  # None: listen on every address of the network host
    public_port: int
    private_address: str | None
    gateway: str
    netmask: str
    pool_start: str
    pool_end: str
    # Which project this is, beyond its name: a project deleted and made again with the
    # same name must not inherit the old one's CA. Empty: not checked (hand-made specs).
    owner: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.public_address or '*'}:{self.public_port}"


def tap_name(segment: int) -> str:
    # "tapvpn" + a VXLAN VNI of up to 8 digits stays within the kernel's 15 bytes.
    return f"{TAP_PREFIX}{segment}"


def client_pool(cidr: str, count: int) -> tuple[str, str]:
    """The top ``count`` addresses of the subnet, below the broadcast address."""
    network = ipaddress.IPv4Network(cidr)
    count = count if count > 0 else DEFAULT_VPN_CLIENTS
    # Keep the network address, the gateway and the VPN's private address out of it.
    usable = network.num_addresses - 4
    if usable < 1:
        raise Conflict("network", f"{cidr} is too small to hold VPN clients")
    count = min(count, usable)
    last = network.broadcast_address - 1
    return str(last - (count - 1)), str(last)


def vpn_spec(
    *,
    project: str,
    network_id: int,
    cidr: str,
    bridge: str,
    segment: int,
    public_address: str | None,
    public_port: int | None,
    private_address: str | None,
    gateway: str,
    netmask: str,
    clients: int,
    owner: str = "",
) -> VpnSpec:
    if public_port is None:
        raise Conflict("network", f"{cidr} of project {project} has no VPN port")
    start, end = client_pool(cidr, clients)
    return VpnSpec(
        project=project,
        network_id=network_id,
        cidr=cidr,
        bridge=bridge,
        tap=tap_name(segment),
        public_address=public_address,
        public_port=public_port,
        private_address=private_address,
        gateway=gateway,
        netmask=netmask,
        pool_start=start,
        pool_end=end,
        owner=owner,
    )
