"""Speed of the host layer, as ratios to baselines measured in the same run.

    python bench/bench_host.py [--networks 200] [--floating 5000] [--repeat 3] [--strict]

Needs root. Every measurement runs in a fresh network namespace of its own
(``nc-bench-<random>``) that is emptied and deleted afterwards; nothing is timed right
after a namespace full of interfaces is deleted (the kernel stalls netlink then), and
interface counts stay moderate.

* 200 VXLAN-segmented networks (VXLAN link, bridge, gateway address, up, marked as
  netcon's) applied from empty by netcon (observe + plan + pipelined netlink), against
  the same operations run as one ``ip`` process each (nova-network's method) and fed to
  one ``ip -batch`` process; then a re-apply with no change.
* associating one floating IP (its address on the public interface plus one element
  in each NAT map) with 5,000 already associated, against the same with 10, and
  against rewriting the whole NAT ruleset with one rule per floating IP, as
  nova-network's iptables-restore did (reproduced with ``nft -f``).
* an allocation reaching dnsmasq's hosts file (rewritten atomically, then SIGHUP; the
  text is rendered while the desired state is read, and is shown apart) for a network
  of 4,000 instances and of 40; also, for information, until dnsmasq's log says it
  re-read the file (dnsmasq's own parsing, which grows with the file).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import load_settings  # noqa: E402
from core.linux import dnsmasq  # noqa: E402
from core.linux.desired import (  # noqa: E402
    DesiredHost,
    DesiredNetwork,
    Dhcp,
    DhcpHost,
    FloatingNat,
    Segment,
)
from core.linux.host import HostLayer  # noqa: E402
from core.linux.observed import FLOATING_LABEL  # noqa: E402
from core.linux.operations import AddAddress, AddNatElement, Plan  # noqa: E402

GROUP = "239.1.1.1"
RESULTS: list[tuple[str, bool]] = []


def ip(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", *argv], input=stdin, text=True, check=True, capture_output=True)


@contextmanager
def fresh_namespace(purpose: str) -> Iterator[str]:
    name = f"nc-bench-{purpose}-{secrets.token_hex(2)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "und0", "type", "veth", "peer", "name", "und1")
        ip("-n", name, "link", "set", "und0", "up")
        ip("-n", name, "link", "set", "und1", "up")
        ip("-n", name, "addr", "add", "192.168.90.1/24", "dev", "und0")
        yield name
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in pids.stdout.split():
            os.kill(int(pid), 15)
        links = subprocess.run(
            ["ip", "-n", name, "-o", "link", "show"], capture_output=True, text=True
        ).stdout.splitlines()
        names = [line.split(":")[1].strip().split("@")[0] for line in links]
        batch = "".join(f"link del {n}\n" for n in names if n != "lo")
        subprocess.run(
            ["ip", "-n", name, "-force", "-batch", "-"], input=batch, text=True, capture_output=True
        )
        ip("netns", "del", name)
        # Let the kernel finish tearing down before anything else is timed.
        time.sleep(1.0)


def report(label: str, value: float, target: str, ok: bool) -> None:
    RESULTS.append((label, ok))
    print(f"  {label:<58} {value:8.3f}   target {target:<10} {'PASS' if ok else 'FAIL'}")


def networks(count: int) -> tuple[DesiredNetwork, ...]:
    found = []
    for index in range(count):
        vni = 100 + index
        subnet = ipaddress.IPv4Network((0x0A000000 + (index << 8), 24))
        found.append(
            DesiredNetwork(
                id=index + 1,
                cidr=str(subnet),
                manager="vlan",
                label=f"vlan{vni}",
                project=None,
                bridge=f"br{vni}",
                owns_bridge=True,
                bridge_interface=None,
                segment=Segment("vxlan", vni, "und0"),
                gateway=str(subnet.network_address + 1),
                prefixlen=24,
                broadcast=str(subnet.broadcast_address),
                dhcp=None,
                isolated=False,
            )
        )
    return tuple(found)


def ip_operations(nets: tuple[DesiredNetwork, ...]) -> list[str]:
    """The kernel operations netcon performs for these networks, in `ip` syntax."""
    lines = []
    for n in nets:
        assert n.segment is not None
        vx = n.segment.ifname
        lines += [
            f"link add name {n.bridge} up type bridge",
            f"link add name {vx} up type vxlan id {n.segment.id} group {GROUP} dev und0 "
            "dstport 4789",
            f"link set {vx} master {n.bridge} alias netcon",
            f"link set {n.bridge} alias netcon",
            f"addr add {n.gateway}/{n.prefixlen} broadcast {n.broadcast} dev {n.bridge}",
        ]
    return lines


def bench_layer(state_dir: Path, ns: str) -> HostLayer:
    """The host layer acting in the benchmark's namespace, on its underlay interfaces."""
    settings = load_settings(
        paths=[], state_dir=str(state_dir), netns=ns, vlan_interface="und0", public_interface="und1"
    )
    return HostLayer(settings)


def bench_links(count: int, repeat: int, state_dir: Path) -> None:
    nets = networks(count)
    lines = ip_operations(nets)
    netcon_times, again_times, batch_times, process_times = [], [], [], []
    for _ in range(repeat):
        with fresh_namespace("nc") as ns:
            layer = bench_layer(state_dir, ns)
            layer.netlink  # noqa: B018 - the long-lived socket is opened once per namespace
            desired = DesiredHost("bench", "und1", GROUP, 4789, networks=nets)
            start = time.perf_counter()
            applied = layer.sync(desired)
            netcon_times.append(time.perf_counter() - start)
            assert len(applied.operations) >= 4 * count, applied.describe()[:5]
            start = time.perf_counter()
            again = layer.sync(desired)
            again_times.append(time.perf_counter() - start)
            assert again.operations == (), again.describe()[:5]
            layer.close()
        with fresh_namespace("batch") as ns:
            start = time.perf_counter()
            ip("-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")
            batch_times.append(time.perf_counter() - start)
        with fresh_namespace("proc") as ns:
            start = time.perf_counter()
            for line in lines:
                ip("-n", ns, *line.split())
            process_times.append(time.perf_counter() - start)
    netcon_s = statistics.median(netcon_times)
    again_s = statistics.median(again_times)
    batch_s = statistics.median(batch_times)
    process_s = statistics.median(process_times)
    print(
        f"\n{count} VXLAN networks from empty ({len(lines)} kernel operations), median of {repeat}:"
    )
    print(f"  netcon apply (observe + plan + pipelined netlink)  {netcon_s:.3f} s")
    print(f"  same operations, one ip -batch process              {batch_s:.3f} s")
    print(f"  same operations, one ip process each                {process_s:.3f} s")
    print(f"  netcon re-apply, nothing to change                  {again_s:.4f} s")
    report(
        "one ip per operation / netcon  (x faster)",
        process_s / netcon_s,
        ">= 2.5",
        process_s / netcon_s >= 2.5,
    )
    report(
        "netcon / ip -batch  (x its time)", netcon_s / batch_s, "<= 1.5", netcon_s / batch_s <= 1.5
    )
    report(
        "re-apply / first apply  (fraction)",
        again_s / netcon_s,
        "< 0.05",
        again_s / netcon_s < 0.05,
    )


def floating_pairs(count: int) -> list[FloatingNat]:
    return [
        FloatingNat(
            str(ipaddress.IPv4Address(0x64400000 + i)),
            str(ipaddress.IPv4Address(0x0A800000 + i)),
            "und1",
        )
        for i in range(count)
    ]


def time_association(present: int, repeat: int, state_dir: Path) -> tuple[float, float]:
    """(one association with netcon, whole-ruleset rewrite) with ``present`` associated."""
    pairs = floating_pairs(present + repeat)
    with fresh_namespace(f"fip{present}") as ns:
        layer = bench_layer(state_dir, ns)
        # Set-up, not timed: the table with `present` associations and their addresses.
        desired = DesiredHost("bench", "und1", GROUP, 4789, floating=tuple(pairs[:present]))
        layer.sync(desired)
        timings = []
        for pair in pairs[present:]:
            one = Plan(
                (
                    AddAddress(pair.interface, pair.floating, 32, None, FLOATING_LABEL),
                    AddNatElement(pair.floating, pair.fixed),
                )
            )
            start = time.perf_counter()
            layer.apply(one)
            timings.append(time.perf_counter() - start)
        full = layer.plan(DesiredHost("bench", "und1", GROUP, 4789, floating=tuple(pairs)))
        assert full.operations == (), full.describe()[:3]
        layer.close()
        # nova-network's way: every change rewrote the whole ruleset, one rule per address.
        rules = [
            "table ip nova_nat {",
            "  chain prerouting { type nat hook prerouting priority dstnat;",
        ]
        rules += [f"    ip daddr {p.floating} dnat to {p.fixed}" for p in pairs]
        rules += ["  }", "  chain postrouting { type nat hook postrouting priority srcnat;"]
        rules += [f"    ip saddr {p.fixed} snat to {p.floating}" for p in pairs]
        rules += ["  }", "}"]
        script = "\n".join(rules) + "\n"
        ip("netns", "exec", ns, "nft", "-f", "-", stdin=script)
        rewrites = []
        for _ in range(repeat):
            start = time.perf_counter()
            ip("netns", "exec", ns, "nft", "-f", "-", stdin="flush table ip nova_nat\n" + script)
            rewrites.append(time.perf_counter() - start)
    return statistics.median(timings), statistics.median(rewrites)


def bench_floating(count: int, repeat: int, state_dir: Path) -> None:
    small, small_rewrite = time_association(10, repeat, state_dir)
    large, large_rewrite = time_association(count, repeat, state_dir)
    print(f"\nassociating one floating IP (address + one element per NAT map), median of {repeat}:")
    print(f"  with 10 associated                                  {small * 1000:.2f} ms")
    print(f"  with {count} associated                                {large * 1000:.2f} ms")
    print(f"  rewriting the whole ruleset, {count} rules per chain   {large_rewrite * 1000:.2f} ms")
    print(f"  (rewriting with 10 rules per chain                  {small_rewrite * 1000:.2f} ms)")
    report(f"with {count} / with 10  (x)", large / small, "<= 1.2", large / small <= 1.2)
    report(
        "ruleset rewrite / netcon  (x faster)",
        large_rewrite / large,
        ">= 20",
        large_rewrite / large >= 20,
    )


def dhcp_network(hosts: int) -> DesiredNetwork:
    subnet = ipaddress.IPv4Network("10.200.0.0/20")
    entries = tuple(
        DhcpHost(
            f"fa:16:3e:{i >> 16 & 0x7F:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
            f"vm{i}",
            str(subnet.network_address + 3 + i),
        )
        for i in range(hosts)
    )
    return DesiredNetwork(
        id=1,
        cidr=str(subnet),
        manager="flatdhcp",
        label="bench",
        project=None,
        bridge="brdhcp",
        owns_bridge=True,
        bridge_interface=None,
        segment=None,
        gateway=str(subnet.network_address + 1),
        prefixlen=20,
        broadcast=str(subnet.broadcast_address),
        dhcp=Dhcp("255.255.240.0", str(subnet.network_address + 2), (), "novalocal", 120, entries),
        isolated=False,
    )


def time_allocation(hosts: int, repeat: int, state_dir: Path) -> float:
    with fresh_namespace(f"dhcp{hosts}") as ns:
        layer = bench_layer(state_dir, ns)
        network = dhcp_network(hosts + repeat)
        layer.sync(DesiredHost("bench", "und1", GROUP, 4789, networks=(dhcp_network(hosts),)))
        files = dnsmasq.DhcpFiles(layer.dhcp_dir, network.bridge)
        pid = layer.observe().dnsmasq[network.bridge].pid
        assert pid is not None
        ours, seen, renders = [], [], []
        for extra in range(1, repeat + 1):
            assert network.dhcp is not None
            grown = replace(
                network, dhcp=replace(network.dhcp, hosts=network.dhcp.hosts[: hosts + extra])
            )
            assert grown.dhcp is not None
            start = time.perf_counter()
            # Rendered while the desired state is read from the database, before apply.
            grown.dhcp.hosts_file  # noqa: B018
            renders.append(time.perf_counter() - start)
            log_size = files.log.stat().st_size
            start = time.perf_counter()
            dnsmasq.write_atomically(files.hosts, dnsmasq.hosts_text(grown))
            dnsmasq.reload(pid)
            ours.append(time.perf_counter() - start)
            # Seen: dnsmasq has logged that it re-read the file (its own parsing).
            while f"read {files.hosts}" not in files.log.read_text()[log_size:]:
                time.sleep(0.0002)
            seen.append(time.perf_counter() - start)
        layer.sync(DesiredHost("bench", "und1", GROUP, 4789))  # stops dnsmasq
        layer.close()
    print(
        f"  ({hosts} instances: rendering the file while reading the desired state "
        f"{statistics.median(renders) * 1000:.3f} ms)"
    )
    return statistics.median(ours), statistics.median(seen)


def bench_dhcp(repeat: int, state_dir: Path) -> None:
    small, small_seen = time_allocation(40, repeat, state_dir)
    large, large_seen = time_allocation(4000, repeat, state_dir)
    print(
        f"\nan allocation reaching dnsmasq's hosts file (atomic rewrite + SIGHUP), "
        f"median of {repeat}:"
    )
    print(f"  network of 40 instances                             {small * 1000:.3f} ms")
    print(f"  network of 4000 instances                           {large * 1000:.3f} ms")
    print(
        "  (until dnsmasq has re-read the file, its own parsing included: "
        f"{small_seen * 1000:.2f} ms / {large_seen * 1000:.2f} ms)"
    )
    report("4000 instances / 40  (x)", large / small, "< 2", large / small < 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--floating", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--only", choices=("links", "floating", "dhcp"), help="run one part")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_host.py needs root: it creates network namespaces", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="nc-bench-state-"))
    state.chmod(0o755)
    steps: dict[str, Callable[[], None]] = {
        "links": lambda: bench_links(args.networks, args.repeat, state),
        "floating": lambda: bench_floating(args.floating, max(args.repeat, 15), state),
        "dhcp": lambda: bench_dhcp(max(args.repeat, 5), state),
    }
    try:
        for name, step in steps.items():
            if args.only in (None, name):
                step()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    failed = [label for label, ok in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
