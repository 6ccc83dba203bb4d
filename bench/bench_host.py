"""Speed of the host layer as an admin meets it: the real `netcon` commands, timed as whole
processes from the database, against the standard tools doing the same work, measured in
the same run.

    python bench/bench_host.py [--networks 200] [--large 1000] [--floating 5000]
                               [--repeat 3] [--only first|dual|floating|dhcp] [--strict]

Needs root. The `netcon` timed is the one installed beside this interpreter, with a
netcon.toml of its own; every measurement acts in a fresh network namespace
(``ncb-<purpose>-<random>``) whose interfaces are deleted before it is, and nothing is timed
right after such a deletion.

* First apply: ``netcon host apply --netns NS`` of N VXLAN networks (one instance each,
  so each has its dnsmasq, and the nftables table), from the database, against a shell
  script run the same way that does the same work with the standard tools: ``ip -batch``
  for the links and addresses, ``nft -f`` for the ruleset, the hosts files, and the
  same dnsmasq command lines, started one after another as a script does, and also all
  in the background followed by ``wait``; in place of netcon's metadata server (netcon's
  own code, which a baseline never runs) the standard library's HTTP server on its port.
  The script's namespace is then checked with ``netcon host plan``: nothing to change
  but starting netcon's metadata server, so it did the same work. Also at --large
  networks.
* Dual stack: the same first apply of N networks, each with a /64 (its gateway on the
  bridge, router adverts and DHCPv6 from its dnsmasq, the ports' IPv6 anti-spoofing),
  against the same N networks IPv4-only, the two alternating, in the same run.
* No-change apply, whole process, against ``python -c "import sqlalchemy"``; and, in
  process, a re-sync from the database against the first sync.
* ``netcon floating associate`` (auto_apply on, so the command applies what it changed)
  with --large networks and --floating associations on the host, against the same with
  10 and 10.
* ``netcon instance launch`` (auto_apply on) into a network of 4,000 instances, against
  one of 40: the hosts file of the network grows, the rest stays the same.
"""

from __future__ import annotations

import ipaddress
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hostbench import (  # noqa: E402
    PYTHON,
    Cloud,
    arguments,
    check,
    median,
    namespace,
    report,
    run,
    run_script,
)

from core.desired.host import read_desired  # noqa: E402
from core.linux import dnsmasq, nft, nfttext  # noqa: E402
from core.linux.desired import DesiredHost  # noqa: E402
from core.linux.metadata import table as metadata_table  # noqa: E402
from core.linux.metadata.operations import (  # noqa: E402
    MetadataTableOperation,
    StartMetadataServer,
)
from core.linux.metadata.spec import table_marker  # noqa: E402
from core.linux.secgroups import render as filter_render  # noqa: E402
from core.linux.secgroups.observe import marker as filter_marker  # noqa: E402
from core.linux.secgroups.operations import FilterOperation  # noqa: E402


def vxlan_cloud(cloud: Cloud, count: int, instances: int = 1, v6: str | None = None) -> None:
    """``count`` VXLAN networks hosted here, ``instances`` instances in each; with ``v6``,
    each network has a /64 of that range."""
    service = cloud.service
    with service.deferred_changes():
        service.create_networks("10.0.0.0/8", count, 256, 100, 10000, v6)
        for index in range(count):
            service.create_project(f"p{index}")
            for number in range(instances):
                service.launch_instance(f"p{index}", f"vm{index}-{number}")


# -- the shell script that does the same work -----------------------------------------


def script(cloud: Cloud, ns: str, background: bool) -> str:
    """A shell script doing what `netcon host apply` does in a fresh ``ns``, with the
    standard tools: the same links, addresses, ruleset, files and daemons' command lines.

    The filter's and the metadata DNAT's elements are those netcon's plan of the fresh
    namespace holds (the instances' ports, netcon's own ports, the VPN taps, the
    hairpinned uplinks), written in nft's own syntax; in place of netcon's metadata server
    the script starts the standard library's HTTP server on its port."""
    layer = cloud.layer(ns)
    # What a first apply of this namespace does, element by element.
    planned = layer.plan().operations
    desired: DesiredHost = read_desired(cloud.service.db, cloud.settings)
    binary = shutil.which("dnsmasq") or "dnsmasq"
    links: list[str] = []
    # The uplinks of the bridges this host routes for, in hairpin mode once the ruleset
    # is loaded (it lets out that way only what this host NATed).
    hairpins: list[str] = []
    for net in desired.networks:
        assert net.segment is not None and net.gateway is not None
        vx = net.segment.ifname
        links += [
            f"link add name {net.bridge} up type bridge",
            f"link add name {vx} up type vxlan id {net.segment.id} group "
            f"{desired.vxlan_group} dev {net.segment.parent} dstport {desired.vxlan_port}",
            f"link set {vx} master {net.bridge} alias netcon",
            f"link set {net.bridge} alias netcon",
            f"addr add {net.gateway}/{net.prefixlen} broadcast {net.broadcast} dev {net.bridge}",
        ]
        hairpins.append(f"link set dev {vx} type bridge_slave hairpin on")
    commands = nft.table_commands(False)
    cidrs = [nft.net_element(c) for c in desired.snat_ranges]
    isolated = list(desired.isolated_bridges)
    commands += [
        nft.element_command("add", "public_ifs", list(desired.public_interfaces)),
        nft.element_command("add", nft.NET_SET, cidrs),
        nft.element_command("add", "isolated", isolated),
        nft.element_command("add", nft.PAIR_SET, [{"concat": [b, b]} for b in isolated]),
    ]
    # The filter (anti-spoofing of the instances' ports, their groups, the ports that
    # pass as netcon's own, the uplinks NATed frames go back out): the same tables and
    # elements, made in the same batch.
    filter_ops = [op for op in planned if isinstance(op, FilterOperation)]
    commands += filter_render.commands(filter_ops)
    # Written out in nft's own syntax, as an admin's script would hold it (the filter's
    # elements are that already), with the metadata DNAT table.
    ruleset = nfttext.batch(commands).rstrip("\n") + "\n" + metadata_table.table_text(planned)
    servers = [op for op in planned if isinstance(op, StartMetadataServer)]
    families = {op.family for op in planned if isinstance(op, MetadataTableOperation)}
    directory = layer.layer.dhcp_dir
    lines = [
        "set -e",
        f"mkdir -p {directory}",
        "ip -batch - <<'EOF'",
        *links,
        "EOF",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "modprobe br_netfilter 2>/dev/null || true",
        "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
        f"mkdir -p {layer.layer.state_dir} && touch {filter_marker(layer.layer.state_dir)}",
        *(
            f"mkdir -p {marker.parent} && touch {marker}"
            for marker in {table_marker(op.files, family) for op in servers for family in families}
        ),
        "nft -f - <<'EOF'",
        ruleset.rstrip("\n"),
        "EOF",
        "ip -batch - <<'EOF'",
        *hairpins,
        "EOF",
        f"printf '%s' {shlex.quote(dnsmasq.script_text())} > {directory}/dhcp-script",
        f"chmod 755 {directory}/dhcp-script",
    ]
    # dnsmasq runs with the environment netcon gives it: the lease script's database,
    # import path and interpreter (its "init" reads the network's leases at start).
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(layer.layer._dnsmasq_env().items())]
    starts = []
    for net in desired.networks:
        files = dnsmasq.DhcpFiles(directory, net.bridge)
        lines.append(f"printf '%s' {shlex.quote(dnsmasq.hosts_text(net))} > {files.hosts}")
        lines.append(f"printf '%s' {shlex.quote(dnsmasq.opts_text(net))} > {files.opts}")
        lines.append(f"printf '%s' {shlex.quote(dnsmasq.names_text(net))} > {files.names}")
        command = " ".join(shlex.quote(word) for word in dnsmasq.argv(binary, net, files))
        lease = net.dhcp.lease_time if net.dhcp is not None else 0
        starts.append(
            f"NETWORK_ID={net.id} DHCP_LEASE_TIME={lease} {command}" + (" &" if background else "")
        )
    lines += starts
    if background:
        lines.append("wait")
    # netcon's metadata server is netcon's own code, which a baseline never runs: in
    # its place the script starts the standard library's HTTP server on the same port,
    # once dnsmasq serves (as netcon starts its own), and waits until it listens.
    for op in servers:
        lines += [
            f"setsid -f python3 -m http.server --bind 0.0.0.0 {op.port} >/dev/null 2>&1 </dev/null",
            f"until ss -Hltn 'sport = :{op.port}' | grep -q .; do sleep 0.005; done",
        ]
    layer.close()
    return "\n".join(lines) + "\n"


# -- first apply and no change ---------------------------------------------------------


def bench_first(root: Path, count: int, repeat: int, label: str, no_change: bool) -> None:
    cloud = Cloud(root, f"first{count}")
    vxlan_cloud(cloud, count)
    ours, serial, background, again, importing, first_in, again_in = [], [], [], [], [], [], []
    same_work = True
    for _ in range(repeat):
        with namespace("nc") as ns:
            ours.append(cloud.netcon("host", "apply", "--netns", ns))
            if no_change:
                for _ in range(5):
                    again.append(cloud.netcon("host", "apply", "--netns", ns))
                    start = time.perf_counter()
                    subprocess.run([PYTHON, "-c", "import sqlalchemy"], check=True)
                    importing.append(time.perf_counter() - start)
        for variant, times in ((False, serial), (True, background)):
            with namespace("sh") as ns:
                times.append(run_script(script(cloud, ns, variant), ns, cloud.root))
                same_work = cloud.plan_is_empty(ns, stand_in_server=True) and same_work
        if no_change:
            with namespace("in") as ns:
                layer = cloud.layer(ns)
                start = time.perf_counter()
                layer.sync()
                first_in.append(time.perf_counter() - start)
                start = time.perf_counter()
                layer.sync()
                again_in.append(time.perf_counter() - start)
                layer.close()
    mine, one_by_one, together = median(ours), median(serial), median(background)
    best = min(one_by_one, together)
    print(f"\nfirst apply of {count} VXLAN networks with DHCP ({label}), median of {repeat}:")
    print(f"  netcon host apply --netns NS, whole process          {mine:.3f} s")
    print(f"  script: ip -batch, nft -f, files, dnsmasq in turn    {one_by_one:.3f} s")
    print(f"  script: the same, dnsmasq in the background + wait   {together:.3f} s")
    print(f"  (the scripts' namespaces: netcon host plan finds nothing to change: {same_work})")
    if count <= 500:
        report("netcon / faster script  (x its time)", mine / best, "<= 1.5", mine / best <= 1.5)
    else:
        report("netcon / faster script  (x its time)", mine / best, "<= 1.0", mine / best <= 1.0)
    check("the script did the same work", same_work)
    if no_change:
        nothing, floor = median(again), median(importing)
        print(f"\nno-change apply of the same {count} networks, median of {len(again)}:")
        print(f"  netcon host apply --netns NS, whole process          {nothing:.3f} s")
        print(f"  python -c 'import sqlalchemy'                        {floor:.3f} s")
        report(
            "no-change apply / import sqlalchemy  (x)",
            nothing / floor,
            "<= 2",
            nothing / floor <= 2,
        )
        resync, first = median(again_in), median(first_in)
        print(f"  in process: first sync {first:.3f} s, re-sync from the database {resync:.4f} s")
        report(
            "in-process re-sync / first sync  (fraction)",
            resync / first,
            "<= 0.05",
            resync / first <= 0.05,
        )


def bench_dual(root: Path, count: int, repeat: int) -> None:
    """The first apply of dual-stack networks against the same networks IPv4-only."""
    only_v4, dual = Cloud(root, f"v4-{count}"), Cloud(root, f"dual-{count}")
    vxlan_cloud(only_v4, count)
    vxlan_cloud(dual, count, v6="2001:db8:100::/48")
    times: dict[str, list[float]] = {"v4": [], "dual": []}
    same_work = True
    for _ in range(repeat):
        for key, cloud in (("v4", only_v4), ("dual", dual)):
            with namespace(key) as ns:
                times[key].append(cloud.netcon("host", "apply", "--netns", ns))
                same_work = cloud.plan_is_empty(ns) and same_work
    v4, both = median(times["v4"]), median(times["dual"])
    print(f"\nfirst apply of {count} VXLAN networks, dual stack and IPv4-only, median of {repeat}:")
    print(f"  netcon host apply --netns NS, IPv4-only, whole process  {v4:.3f} s")
    print(f"  netcon host apply --netns NS, dual stack, whole process {both:.3f} s")
    print(f"  (a second plan finds nothing to change: {same_work})")
    report("dual stack / IPv4-only  (x its time)", both / v4, "<= 1.2", both / v4 <= 1.2)
    check("the dual-stack apply left nothing to change", same_work)


# -- floating associate ------------------------------------------------------------------


def floating_cloud(root: Path, networks: int, associated: int, spare: int) -> Cloud:
    """``networks`` networks, ``associated`` floating IPs associated on the host, and
    ``spare`` instances and allocated addresses for the timed associations."""
    cloud = Cloud(root, f"fip{networks}-{associated}", auto_apply=False)
    per = max(1, -(-(associated + spare) // networks))
    vxlan_cloud(cloud, networks, per)
    service = cloud.service
    first = ipaddress.IPv4Address("172.20.0.1")
    last = first + associated + spare - 1
    service.create_floating_range("bench", f"{first}-{last}")
    with service.deferred_changes():
        for number in range(associated + spare):
            index, slot = number % networks, number // networks
            address = service.allocate_floating_ip(f"p{index}").address
            if number < associated:
                service.associate_floating_ip(address, f"vm{index}-{slot}")
    return cloud


def pairs(cloud: Cloud, networks: int, associated: int, spare: int) -> list[tuple[str, str]]:
    """(allocated address, instance) for each timed association, from the same project."""
    found = []
    for number in range(associated, associated + spare):
        index, slot = number % networks, number // networks
        owned = cloud.service.list_floating_ips(project=f"p{index}")
        taken = {address for address, _ in found}
        address = next(f.address for f in owned if f.instance is None and f.address not in taken)
        found.append((address, f"vm{index}-{slot}"))
    return found


def bench_floating(root: Path, large: int, associated: int, repeat: int) -> None:
    small_cloud = floating_cloud(root, 10, 10, repeat)
    large_cloud = floating_cloud(root, large, associated, repeat)
    clouds = [(small_cloud, 10, 10), (large_cloud, large, associated)]
    with namespace("fips") as small_ns, namespace("fipl") as large_ns:
        times: dict[int, list[float]] = {10: [], large: []}
        todo = {}
        for cloud, networks, count in clouds:
            ns = small_ns if networks == 10 else large_ns
            cloud.netcon("host", "apply", "--netns", ns)
            config = cloud.root / "config" / "netcon" / "netcon.toml"
            text = config.read_text().replace("auto_apply = false", "auto_apply = true")
            config.write_text(text + f'netns = "{ns}"\n')
            todo[networks] = (cloud, pairs(cloud, networks, count, repeat))
        for step in range(repeat):
            for networks in (10, large):
                cloud, chosen = todo[networks]
                address, instance = chosen[step]
                times[networks].append(cloud.netcon("floating", "associate", address, instance))
        converged = all(
            cloud.plan_is_empty(small_ns if n == 10 else large_ns) for cloud, n, _ in clouds
        )
        layer = large_cloud.layer(large_ns)
        start = time.perf_counter()
        layer.plan()
        full_plan = time.perf_counter() - start
        layer.close()
    small, big = median(times[10]), median(times[large])
    print(f"\nnetcon floating associate, auto-applied, whole process, median of {repeat}:")
    print(f"  10 networks, 10 floating IPs associated              {small * 1000:.1f} ms")
    print(f"  {large} networks, {associated} floating IPs associated         {big * 1000:.1f} ms")
    print(f"  (afterwards netcon host plan finds nothing to change: {converged})")
    print(
        f"  (in process, for explanation: a full plan of the large host takes "
        f"{full_plan * 1000:.0f} ms; the association plans only its own address and pair)"
    )
    report(
        f"with {large} networks and {associated} / with 10  (x)",
        big / small,
        "<= 1.2",
        big / small <= 1.2,
    )
    check("floating: later plans empty", converged)


# -- an allocation reaching dnsmasq -----------------------------------------------------


def bench_dhcp(root: Path, repeat: int) -> None:
    cloud = Cloud(root, "dhcp")
    service = cloud.service
    with service.deferred_changes():
        service.create_networks("10.200.0.0/19", 2, 4096, 100, 10000)
        for project, count in (("few", 40), ("many", 4000)):
            service.create_project(project)
            for number in range(count):
                service.launch_instance(project, f"{project}{number}")
    with namespace("dhcp") as ns:
        cloud.netcon("host", "apply", "--netns", ns)
        config = cloud.root / "config" / "netcon" / "netcon.toml"
        config.write_text(config.read_text() + f'auto_apply = true\nnetns = "{ns}"\n')
        times: dict[str, list[float]] = {"few": [], "many": []}
        for step in range(repeat):
            for project in ("few", "many"):
                name = f"{project}-new{step}"
                times[project].append(
                    cloud.netcon("instance", "launch", "--project", project, name)
                )
        converged = cloud.plan_is_empty(ns)
    few, many = median(times["few"]), median(times["many"])
    print(f"\nnetcon instance launch, auto-applied, whole process, median of {repeat}:")
    print(f"  into a network of 40 instances                       {few * 1000:.1f} ms")
    print(f"  into a network of 4000 instances                     {many * 1000:.1f} ms")
    print(f"  (afterwards netcon host plan finds nothing to change: {converged})")
    report("4000 instances / 40  (x)", many / few, "< 2", many / few < 2)
    check("dhcp: later plan empty", converged)


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--large", type=int, default=1000, help="0: skip the large runs")
    parser.add_argument("--floating", type=int, default=5000)
    parser.add_argument(
        "--only", choices=("first", "dual", "floating", "dhcp"), help="run one part"
    )
    args = parser.parse_args()

    def steps(root: Path) -> None:
        chosen: dict[str, Callable[[], object]] = {
            "first": lambda: (
                bench_first(root, args.networks, args.repeat, "the usual size", True),
                args.large and bench_first(root, args.large, 1, "large", False),
            ),
            "dual": lambda: bench_dual(root, args.networks, args.repeat),
            "floating": lambda: bench_floating(
                root, args.large or 1000, args.floating, max(args.repeat, 15)
            ),
            "dhcp": lambda: bench_dhcp(root, max(args.repeat, 7)),
        }
        for name, step in chosen.items():
            if args.only in (None, name):
                step()

    return run("bench_host.py", "nc-bench-", steps, args.strict)


if __name__ == "__main__":
    sys.exit(main())
