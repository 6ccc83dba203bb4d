"""The resolvers a network's dnsmasq forwards the names it does not know to.

dnsmasq is never let read resolv.conf itself (it runs with --no-resolv): netcon enters a
network namespace with setns, which leaves the mount namespace alone, so dnsmasq would
read the host's file, and a loopback resolver there (systemd-resolved's 127.0.0.53, a
local cache) is a different, unreachable address inside the network host's namespace.
netcon reads the file the way `ip netns exec` would show it and hands dnsmasq the
usable servers with --server.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")
NETNS_ETC = Path("/etc/netns")


def resolv_conf(netns: str | None) -> Path:
    """The file a program in ``netns`` should read (iproute2's /etc/netns convention)."""
    if netns is not None:
        own = NETNS_ETC / netns / "resolv.conf"
        if own.is_file():
            return own
    return RESOLV_CONF


def parse(text: str, *, loopback: bool) -> tuple[str, ...]:
    """The nameserver addresses of a resolv.conf, in order, without repeats; loopback ones
    only when ``loopback`` (they are reachable only from the namespace that has them)."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        try:
            address = ipaddress.ip_address(words[1].split("%", 1)[0])
        except ValueError:
            continue
        if address.is_loopback and not loopback or address.is_unspecified:
            continue
        if address.version == 6 and address.is_link_local:
            continue  # needs its interface, which names the host's, not the namespace's
        if str(address) not in found:
            found.append(str(address))
    return tuple(found)


def host_resolvers(netns: str | None) -> tuple[str, ...]:
    path = resolv_conf(netns)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ()
    # The host's own loopback is not the namespace's.
    return parse(text, loopback=netns is None or path != RESOLV_CONF)
