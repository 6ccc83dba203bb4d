"""IPv4 forwarding of one namespace, read and set without starting a process."""

from __future__ import annotations

import os

from core.linux.namespace import entered

# /proc/sys/net shows the namespace of the thread that opens it.
FORWARDING = "/proc/sys/net/ipv4/ip_forward"


def read_forwarding(netns: str | None) -> bool:
    with entered(netns), open(FORWARDING) as handle:
        return handle.read().strip() == "1"


def enable_forwarding(netns: str | None) -> None:
    with entered(netns), open(FORWARDING, "w") as handle:
        handle.write("1\n")


# br_netfilter hands bridged IPv4 to the ip hooks (and conntrack): security groups judge
# traffic between instances on one bridge there. The file is missing without br_netfilter.
BRIDGE_NETFILTER = "/proc/sys/net/bridge/bridge-nf-call-iptables"
# The same for bridged IPv6 and the ip6 hooks.
BRIDGE_NETFILTER_V6 = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"


def read_bridge_netfilter(netns: str | None) -> bool | None:
    """Whether br_netfilter hands both families to the ip hooks (None: no br_netfilter)."""
    try:
        with entered(netns):
            found = []
            for path in (BRIDGE_NETFILTER, BRIDGE_NETFILTER_V6):
                with open(path) as handle:
                    found.append(handle.read().strip() == "1")
            return all(found)
    except FileNotFoundError:
        return None


def enable_bridge_netfilter(netns: str | None) -> None:
    with entered(netns):
        for path in (BRIDGE_NETFILTER, BRIDGE_NETFILTER_V6):
            with open(path, "w") as handle:
                handle.write("1\n")


# IPv6 forwarding on every interface; it also makes them routers, which ignore the
# router adverts they hear (dnsmasq's own, on the bridges, included).
FORWARDING_V6 = "/proc/sys/net/ipv6/conf/all/forwarding"


def read_forwarding_v6(netns: str | None) -> bool:
    try:
        with entered(netns), open(FORWARDING_V6) as handle:
            return handle.read().strip() == "1"
    except FileNotFoundError:
        return False  # no IPv6 in this kernel: enabling it says so


def enable_forwarding_v6(netns: str | None) -> None:
    with entered(netns), open(FORWARDING_V6, "w") as handle:
        handle.write("1\n")


def _ipv6_conf(ifname: str, key: str) -> str:
    return f"/proc/sys/net/ipv6/conf/{ifname}/{key}"


def ipv6_disabled(netns: str | None, ifnames: list[str]) -> frozenset[str]:
    """Those of ``ifnames`` that have IPv6 switched off (disable_ipv6, as a host whose
    default says so gives every new bridge)."""
    with entered(netns):
        return frozenset(
            ifname
            for ifname in ifnames
            if _read_conf(_ipv6_conf(ifname, "disable_ipv6")) == b"1"
        )


def _read_conf(path: str) -> bytes | None:
    """A value under /proc/sys, stripped; None when the file is missing.

    os-level reads: one file per bridge, a third of what file objects cost."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, 16).strip()
    finally:
        os.close(fd)


def enable_ipv6(netns: str | None, ifname: str) -> None:
    with entered(netns), open(_ipv6_conf(ifname, "disable_ipv6"), "w") as handle:
        handle.write("0\n")


# A bridge of a dual-stack network hears its own network's router adverts; one that
# took them would give the host an address, and a default route, in a guest network.
ADVERT_KEYS = ("accept_ra", "autoconf")


def hearing_adverts(netns: str | None, ifnames: list[str]) -> frozenset[str]:
    """Those of ``ifnames`` that would configure themselves from a router advert."""
    found = set()
    with entered(netns):
        for ifname in ifnames:
            for key in ADVERT_KEYS:
                value = _read_conf(_ipv6_conf(ifname, key))
                if value is not None and value != b"0":
                    found.add(ifname)
                    break  # one key that would take an advert is enough
    return frozenset(found)


def ignore_adverts(netns: str | None, ifnames: list[str]) -> None:
    if not ifnames:
        return
    with entered(netns):
        for ifname in ifnames:
            for key in ADVERT_KEYS:
                with open(_ipv6_conf(ifname, key), "w") as handle:
                    handle.write("0\n")
