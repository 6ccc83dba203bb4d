"""The tap device of a VPN server, and the check that its UDP port is free.

``None`` is the namespace netcon itself runs in; a name is one made with ``ip netns``
(rehearsals and tests). A name that does not exist is refused instead of created.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.errors import HostError
from core.linux.namespace import NETNS_DIR, check_netns, entered


@contextmanager
def iproute(name: str | None) -> Iterator[Any]:
    # Imported on use: pyroute2 costs a tenth of a second, which a host apply with
    # no VPN to start should not pay.
    from pyroute2 import IPRoute

    check_netns(name)
    # The thread stays inside for the whole block: pyroute2 makes a tap with an ioctl
    # on /dev/net/tun, which acts in the caller's namespace, not the socket's.
    with entered(name):
        ipr = IPRoute()
        try:
            yield ipr
        finally:
            ipr.close()


def where(name: str | None) -> str:
    return f" in namespace {name}" if name else ""


def ensure_tap(name: str | None, tap: str, bridge: str) -> None:
    """Make ``tap`` (persistent, so OpenVPN restarts keep the port) a running bridge port."""
    with iproute(name) as ipr:
        bridges = ipr.link_lookup(ifname=bridge)
        if not bridges:
            raise HostError(
                f"bridge {bridge} does not exist{where(name)}: run 'netcon host apply' first"
            )
        found = ipr.link_lookup(ifname=tap)
        if found:
            kind = ipr.link("get", index=found[0])[0].get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
            if kind != "tun":
                raise HostError(f"{tap}{where(name)} exists and is not a tap device")
        else:
            from pyroute2.netlink.exceptions import NetlinkError

            try:
                ipr.link("add", ifname=tap, kind="tuntap", mode="tap")
            except NetlinkError as exc:
                raise HostError(f"cannot create {tap}{where(name)}: {exc}") from None
            found = ipr.link_lookup(ifname=tap)
        ipr.link("set", index=found[0], master=bridges[0], state="up")


def remove_tap(name: str | None, tap: str) -> None:
    if name is not None and not (NETNS_DIR / name).exists():
        return  # the namespace is gone, and the tap with it
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with iproute(name) as ipr:
            found = ipr.link_lookup(ifname=tap)
            if found:
                ipr.link("del", index=found[0])
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise HostError(f"cannot delete {tap}{where(name)}: {exc}") from None


def check_udp_port_free(name: str | None, address: str | None, port: int) -> None:
    """Refuse a port something else already listens on, before anything is made."""
    check_netns(name)
    with entered(name):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # The socket belongs to the namespace it was made in, so bind after leaving.
        probe.bind((address or "0.0.0.0", port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise HostError(
                f"vpn_public_port: UDP {address or '*'}:{port} is already taken{where(name)}"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise HostError(
                f"vpn_public_address: {address} is not an address of this host{where(name)}"
            ) from None
        raise HostError(f"cannot bind UDP {address}:{port}{where(name)}: {exc.strerror}") from None
    finally:
        probe.close()
