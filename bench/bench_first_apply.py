"""A host's first apply against a baseline with no netcon code in it.

    python bench/bench_first_apply.py [--networks 40 200] [--repeat 3] [--strict]

Needs root. For each size N: N FlatDHCP networks of four addresses (gateway, one
instance, broadcast), one instance in each whose address the database holds leased, so
every dnsmasq starts with a lease to restore. Timed as whole processes, alternating, each
in a fresh network namespace made by hostbench.py (``ncb-<purpose>-<random>``):

* netcon: ``netcon host apply --netns NS`` from the database, with a netcon.toml of its
  own (the `netcon` installed beside this interpreter).
* the baseline: the shell script an admin would write for the same host, made from what
  netcon's apply left in its namespace of the same round (read with ``ip -j`` and
  ``nft list ruleset``, and the files netcon wrote), so it does the same work: one
  ``ip -batch`` for the bridges and addresses, the sysctls, one ``nft -f`` of the same
  ruleset, the same hosts, options and names files, and the same dnsmasq command lines
  without netcon's lease script: each dnsmasq is given a ``--dhcp-leasefile`` holding its
  lease, written beforehand, in place of ``--dhcp-script`` and ``--leasefile-ro``; all
  started in the background, then ``wait``. Plus one ``python3 -c "import sqlalchemy"``
  (netcon reads a database; so would anything the admin used to know what to write).
  netcon also starts its metadata server, which the baseline does not; the script is
  timed once that server has finished starting (it answers HTTP), so the two never
  share the CPU.

After each script, the bench checks the two namespaces hold the same bridges, addresses,
ruleset and number of serving dnsmasq processes. Target: netcon <= 1.5x the baseline.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hostbench import (  # noqa: E402
    PYTHON,
    Cloud,
    arguments,
    check,
    in_ns,
    load,
    namespace,
    report,
    run,
    run_script,
)
from sqlalchemy import update  # noqa: E402

from core.linux import namespace as netns_  # noqa: E402
from core.linux import processes  # noqa: E402
from core.store.schema import fixed_ips  # noqa: E402

# How long the metadata server netcon started may take to finish starting.
SETTLE_TIMEOUT = 15.0


def flat_cloud(root: Path, count: int) -> Cloud:
    """``count`` FlatDHCP networks of four addresses, each with one instance whose
    address is leased."""
    cloud = Cloud(root, f"flat{count}", network_manager="flatdhcp")
    service = cloud.service
    first = int(ipaddress.IPv4Address("10.0.0.0"))
    with service.deferred_changes():
        for index in range(count):
            cidr = f"{ipaddress.IPv4Address(first + 4 * index)}/30"
            service.create_networks(cidr, 1, 4, manager="flatdhcp", bridge=f"brf{index}")
        for index in range(count):
            service.create_project(f"p{index}", "flatdhcp")
            service.launch_instance(f"p{index}", f"vm{index}")
    # Each guest holds its lease, as the lease script would have recorded it.
    with service.db.write() as connection:
        connection.execute(
            update(fixed_ips).where(fixed_ips.c.instance_id.is_not(None)).values(leased=True)
        )
    return cloud


# -- the baseline, from what netcon's apply left --------------------------------------


def dnsmasq_lines(ns: str, state: Path) -> list[list[str]]:
    """The command lines of the dnsmasq processes serving in ``ns`` from ``state``."""
    found = processes.find("dnsmasq", f"--pid-file={state}/", ns)
    return sorted({tuple(p.argv) for p in found if p.here})  # type: ignore[misc]


def baseline(ns: str, state: Path, folder: Path) -> str:
    """The admin's script for what netcon made in ``ns`` from ``state``, writing its
    files in ``folder``."""
    links = json.loads(in_ns(ns, "ip", "-j", "-d", "link", "show"))
    addresses = json.loads(in_ns(ns, "ip", "-j", "addr", "show"))
    batch = []
    bridges = set()
    for link in links:
        if link.get("linkinfo", {}).get("info_kind") == "bridge":
            bridges.add(link["ifname"])
            batch.append(f"link add name {link['ifname']} mtu {link['mtu']} up type bridge")
    for entry in addresses:
        if entry["ifname"] not in bridges:
            continue  # the namespace's underlay, made with it
        for address in entry.get("addr_info", []):
            if address["family"] != "inet":
                continue
            broadcast = f" broadcast {address['broadcast']}" if "broadcast" in address else ""
            batch.append(
                f"addr add {address['local']}/{address['prefixlen']}{broadcast} "
                f"dev {entry['ifname']}"
            )
    ruleset = in_ns(ns, "nft", "list", "ruleset")
    dhcp = state / f"netns-{ns}" / "dhcp"
    mine = folder / "dhcp"
    lines = [
        "set -e",
        f"rm -rf {mine} && mkdir -p {mine} && chmod 755 {mine}",
        "ip -batch - <<'EOF'",
        *batch,
        "EOF",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "modprobe br_netfilter 2>/dev/null || true",
        "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
        "nft -f - <<'EOF'",
        ruleset.rstrip("\n"),
        "EOF",
    ]
    starts = []
    for argv in dnsmasq_lines(ns, state):
        words = []
        for word in argv:
            if word.startswith("--dhcp-script=") or word == "--leasefile-ro":
                continue
            words.append(word.replace(f"{dhcp}/", f"{mine}/"))
        bridge = next(w for w in argv if w.startswith("--interface=")).split("=", 1)[1]
        lease_file = mine / f"{bridge}.leases"
        if not any(word.startswith("--dhcp-leasefile=") for word in words):
            words.insert(-2, f"--dhcp-leasefile={lease_file}")
        for suffix in ("conf", "opts", "names"):
            text = (dhcp / f"{bridge}.{suffix}").read_text()
            lines.append(f"printf '%s' {shlex.quote(text)} > {mine}/{bridge}.{suffix}")
        # dnsmasq's own lease-file format, the lease netcon restores from the database.
        leases = (dhcp / f"{bridge}.leases").read_text()
        lines.append(f"printf '%s' {shlex.quote(leases)} > {lease_file}")
        starts.append(" ".join(shlex.quote(w) for w in words) + " &")
    lines += starts
    lines += ["wait", f"{shlex.quote(PYTHON)} -c 'import sqlalchemy'"]
    return "\n".join(lines) + "\n"


def settle(ns: str, port: int) -> None:
    """Wait until the metadata server netcon started in ``ns`` answers HTTP: it listens
    before it has imported what it serves with, and finishes that after the apply; the
    script is timed only once that is done, so the two never share the CPU."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        with netns_.entered(ns):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.settimeout(SETTLE_TIMEOUT)
            probe.connect(("127.0.0.1", port))
            probe.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if probe.recv(16).startswith(b"HTTP/"):
                return
        except OSError:
            time.sleep(0.05)
        finally:
            probe.close()
    raise SystemExit(f"the metadata server in {ns} did not answer within {SETTLE_TIMEOUT:.0f} s")


def summary(ns: str, state: Path) -> tuple[object, ...]:
    """What must be the same in both namespaces: bridges, IPv4 addresses, the ruleset
    and the number of serving dnsmasq processes."""
    links = json.loads(in_ns(ns, "ip", "-j", "-d", "link", "show"))
    bridges = sorted(
        (link["ifname"], link["mtu"])
        for link in links
        if link.get("linkinfo", {}).get("info_kind") == "bridge"
    )
    addresses = sorted(
        (entry["ifname"], a["local"], a["prefixlen"])
        for entry in json.loads(in_ns(ns, "ip", "-j", "addr", "show"))
        for a in entry.get("addr_info", [])
        if a["family"] == "inet" and entry["ifname"] != "lo"
    )
    ruleset = in_ns(ns, "nft", "list", "ruleset")
    serving = len(processes.find("dnsmasq", f"--pid-file={state}", ns))
    return bridges, addresses, ruleset, serving


def bench(root: Path, count: int, repeat: int) -> None:
    cloud = flat_cloud(root, count)
    before = load()
    ours: list[float] = []
    theirs: list[float] = []
    same = True
    for round_ in range(repeat):
        with namespace("nc") as netcon_ns:
            ours.append(cloud.netcon("host", "apply", "--netns", netcon_ns))
            settle(netcon_ns, cloud.settings.metadata_port)
            folder = cloud.root / f"script{round_}"
            folder.mkdir()
            folder.chmod(0o755)
            text = baseline(netcon_ns, cloud.state, folder)
            with namespace("sh") as script_ns:
                theirs.append(run_script(text, script_ns, folder))
                netcon_has = summary(netcon_ns, cloud.state)
                script_has = summary(script_ns, folder)
                if netcon_has != script_has:
                    same = False
                    print(f"    (round {round_}: the namespaces differ)")
    mine, base = statistics.median(ours), statistics.median(theirs)
    ratio = mine / base
    print(
        f"\nfirst apply of {count} FlatDHCP networks, a leased instance each, median of {repeat}:"
    )
    print(f"  netcon host apply --netns NS, whole process                  {mine:.3f} s")
    print(f"  script: ip -batch, nft -f, files, dnsmasq, import sqlalchemy {base:.3f} s")
    print(f"  (same bridges, addresses, ruleset and dnsmasq count: {same})")
    print(f"  ({before} before, {load()} after)")
    print(
        f"  (range: netcon {min(ours):.3f}-{max(ours):.3f} s, "
        f"script {min(theirs):.3f}-{max(theirs):.3f} s)"
    )
    report(f"netcon / baseline at {count}  (x its time)", ratio, "<= 1.5", ratio <= 1.5)
    check(f"the same work at {count}", same)


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--networks", type=int, nargs="+", default=[40, 200])
    args = parser.parse_args()

    def steps(root: Path) -> None:
        for count in args.networks:
            bench(root, count, args.repeat)

    return run("bench_first_apply.py", "nc-first-", steps, args.strict)


if __name__ == "__main__":
    sys.exit(main())
