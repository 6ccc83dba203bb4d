"""IPv4 forwarding of one namespace, read and set without starting a process."""

from __future__ import annotations

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


def read_bridge_netfilter(netns: str | None) -> bool | None:
    try:
        with entered(netns), open(BRIDGE_NETFILTER) as handle:
            return handle.read().strip() == "1"
    except FileNotFoundError:
        return None


def enable_bridge_netfilter(netns: str | None) -> None:
    with entered(netns), open(BRIDGE_NETFILTER, "w") as handle:
        handle.write("1\n")
