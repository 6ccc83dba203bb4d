"""Evacuation of a dead network host as its guests see it: from `netcon host evacuate` to
every guest's DHCP renewal ACKed by the host that took its networks over, against a first
apply of the same networks on one host, measured in the same run.

    python bench/bench_evacuate.py [--networks 50] [--rounds 3] [--retry 1]
                                   [--server URL] [--verbose] [--strict]

Needs root, PostgreSQL 15 (started for the run, as the test suite starts it, unless
--server names one) and busybox udhcpc. Network hosts are namespaces
(``ncb-<purpose>-<random>``) joined by a VXLAN underlay (a bridge in a namespace of its
own), each kept by its own `netcon agent --netns NS` process: the installed `netcon`
beside this interpreter, started as a user starts it. Host n1 serves ``--networks`` VXLAN
networks, one project and one instance each; the instances run on a compute host, each a
guest namespace plugged into its network's bridge there and configured by a busybox
udhcpc daemon (`udhcpc -f -T RETRY`) whose script stamps every lease event. Spare hosts
n2, n3, ... run their agents and serve nothing.

Each round, one after the other:

* Baseline: the first apply of those networks on one host: `netcon host apply --netns
  NS` as the serving host's admin runs it, a whole process, from the database, into a
  fresh namespace of its own (bridges, VXLAN links, gateways, one dnsmasq each, nftables,
  the metadata server). The namespace is then emptied and deleted.
* Evacuation: the serving host dies: its agent is killed and its underlay link goes down
  (its dnsmasq processes can answer no one). Once it is shown down the clock starts, and
  `netcon host evacuate DEAD --to SPARE` runs as a whole process; when it returns every
  guest's udhcpc is told to renew (SIGUSR1, as at T1: a unicast REQUEST to its server,
  then broadcast ones every RETRY seconds). The clock stops when the last guest's script
  reports its renewal ACKed ("renew", not a new lease); the new host's dnsmasq logs then
  show that it sent each of those ACKs. A guest that loses its lease instead (busybox
  gives up after four requests, RETRY seconds apart) fails the run, and its round is
  left out of the medians.

Both are measured with the same agents and guests running, round after round, since the
machine may be shared (the load average is printed with every figure). Target: the
median evacuation at most 1.5 times the median first apply. Namespaces are emptied and
deleted at the end, as are the processes the run started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from bench_agents import AgentProcess, load, postgres  # noqa: E402
from hostbench import empty  # noqa: E402

from core.config import Settings, load_settings  # noqa: E402
from core.linux.ports import port_name  # noqa: E402
from core.service import NetconService  # noqa: E402

PYTHON = sys.executable
NETCON = str(Path(PYTHON).parent / "netcon")
COMPUTE = "cmp"
# Short, so that a dead host is shown down within seconds (agents heartbeat every 1.5 s).
HOST_DOWN_TIME = 6
TARGET = 1.5
# The stamp is all a renewal needs (the address stays); a new lease is configured. The
# clock is the boot clock (/proc/uptime, 10 ms) read by the shell itself: a program run
# for it would be late by as long as a busy machine takes to start one.
GUEST_SCRIPT = """#!/bin/sh
read now _ < /proc/uptime
echo "$now $1 $ip" >> {events}
[ "$1" = bound ] && ip addr replace "$ip/$mask" dev "$interface"
exit 0
"""
ACK = re.compile(r"DHCPACK\((br\d+)\) (\S+) ")
RESULTS: list[tuple[str, bool]] = []
VERBOSE = False


def ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


def report(label: str, value: float, target: str, ok: bool) -> None:
    RESULTS.append((label, ok))
    print(f"  {label:<52} {value:8.2f}   target {target:<7} {'PASS' if ok else 'FAIL'}")


class Lab:
    """The namespaces of the run: a switch, the hosts, the guests."""

    def __init__(self, stack: ExitStack) -> None:
        self.tag = secrets.token_hex(2)
        self.namespaces: list[str] = []
        stack.callback(self.remove)
        self.switch = self.netns("sw")
        ip("-n", self.switch, "link", "add", "sw0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "sw0", "up")
        self.ports = 0

    def netns(self, purpose: str) -> str:
        name = f"ncb-{purpose}-{self.tag}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def host(self, purpose: str, *, wired: bool = True) -> str:
        """A network host: an underlay port on the switch (``wired``; else a veth of its
        own, for a host that must reach no one), a public interface."""
        ns = self.netns(purpose)
        self.ports += 1
        if wired:
            ip("link", "add", "und0", "netns", ns, "type", "veth", "peer", "name",
               f"u{self.ports}", "netns", self.switch)  # fmt: skip
            ip("-n", self.switch, "link", "set", f"u{self.ports}", "master", "sw0", "up")
        else:
            ip("-n", ns, "link", "add", "und0", "type", "veth", "peer", "name", "und1")
            ip("-n", ns, "link", "set", "und1", "up")
        ip("-n", ns, "addr", "add", f"192.168.90.{self.ports}/24", "dev", "und0")
        ip("-n", ns, "link", "set", "und0", "up")
        ip("-n", ns, "link", "add", "pub0", "type", "veth", "peer", "name", "pub1")
        ip("-n", ns, "addr", "add", f"203.0.113.{10 + self.ports}/24", "dev", "pub0")
        for link in ("pub0", "pub1"):
            ip("-n", ns, "link", "set", link, "up")
        return ns

    def guest(self, number: int, host_ns: str, bridge: str, mac: str) -> str:
        """An instance as a compute side plugs it: a veth from its namespace into the
        bridge, at the bridge's MTU, in hairpin mode."""
        ns = self.netns(f"g{number}")
        port = port_name(mac)
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
           "netns", host_ns)  # fmt: skip
        mtu = subprocess.run(
            ["ip", "netns", "exec", host_ns, "cat", f"/sys/class/net/{bridge}/mtu"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        ip("-n", ns, "link", "set", "eth0", "address", mac, "mtu", mtu, "up")
        ip("-n", host_ns, "link", "set", port, "mtu", mtu, "master", bridge, "up")
        ip("-n", host_ns, "link", "set", port, "type", "bridge_slave", "hairpin", "on")
        return ns

    def discard(self, ns: str) -> None:
        empty(ns)
        self.namespaces.remove(ns)

    def remove(self) -> None:
        for name in reversed(self.namespaces):
            with contextlib.suppress(subprocess.CalledProcessError):
                empty(name)


class Guest:
    """One guest's busybox udhcpc daemon and the lease events its script stamped."""

    def __init__(self, ns: str, folder: Path, retry: int) -> None:
        self.ns = ns
        self.events = folder / f"{ns}.events"
        script = folder / f"{ns}.sh"
        script.write_text(GUEST_SCRIPT.replace("{events}", str(self.events)))
        script.chmod(0o755)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-f", "-i", "eth0",
             "-T", str(retry), "-t", "5", "-A", str(retry), "-s", str(script)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def seen(self, after: float = 0.0) -> list[tuple[float, str, str]]:
        """(boot-clock time, event, address) of each event stamped after ``after``."""
        if not self.events.exists():
            return []
        found = []
        for line in self.events.read_text().splitlines():
            stamp, event, *rest = [*line.split(), ""]
            if float(stamp) > after:
                found.append((float(stamp), event, rest[0]))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Cloud:
    def __init__(self, stack: ExitStack, root: Path, server_url: str, rounds: int) -> None:
        self.lab = Lab(stack)
        name = f"evacuation_{self.lab.tag}"
        with psycopg.connect(
            server_url.replace("postgresql+psycopg://", "postgresql://") + "postgres",
            autocommit=True,
        ) as admin:
            admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        self.url = f"{server_url}{name}"
        self.root = root
        self.serving = [f"n{number}" for number in range(1, rounds + 2)]
        self.ns: dict[str, str] = {}
        self.env: dict[str, dict[str, str]] = {}
        self.agents: dict[str, AgentProcess] = {}
        for host in (*self.serving, COMPUTE):
            self.ns[host] = self.lab.host(host)
            config = root / host / "config" / "netcon"
            config.mkdir(parents=True)
            state = root / host / "state"
            state.mkdir()
            for folder in (root / host, state):
                folder.chmod(0o755)  # dnsmasq reads its files as nobody
            values = {
                "host": host,
                "state_dir": str(state),
                "public_interface": "pub0",
                "vlan_interface": "und0",
                "segmentation": "vxlan",
                "host_down_time": HOST_DOWN_TIME,
            }
            config.joinpath("netcon.toml").write_text(
                "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
            )
            self.env[host] = dict(
                os.environ, XDG_CONFIG_HOME=str(config.parent), NETCON_DATABASE_URL=self.url
            )
        self.service = NetconService(self.url, self.settings("n1"), actor="bench")
        stack.callback(self.stop)

    def settings(self, host: str) -> Settings:
        return load_settings(paths=[self.root / host / "config" / "netcon" / "netcon.toml"])

    def netcon(self, host: str, *argv: str) -> float:
        """`netcon ARGV` as the admin of ``host`` runs it; its wall time."""
        start = time.perf_counter()
        result = subprocess.run([NETCON, *argv], env=self.env[host], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"netcon {' '.join(argv)} failed: {result.stderr.strip()}")
        return elapsed

    def start(self, host: str) -> None:
        self.agents[host] = AgentProcess(
            [NETCON, "agent", "--netns", self.ns[host]], self.env[host]
        )

    def kill(self, host: str) -> None:
        agent = self.agents.pop(host)
        agent.process.send_signal(signal.SIGKILL)
        agent.process.wait()

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.service.db.dispose()

    def hosts(self) -> dict[str, Any]:
        return {view.name: view for view in self.service.list_hosts()}


def uptime() -> float:
    """The boot clock the guests' scripts stamp their events with."""
    return float(Path("/proc/uptime").read_text().split()[0])


def wait(what: str, done: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def populate(cloud: Cloud, count: int) -> list[Any]:
    """``count`` VXLAN networks served by n1, one instance each running on the compute
    host; returns (network, its instance's address) pairs."""
    service = cloud.service
    pairs = []
    beat = 0.0
    with service.deferred_changes():
        made = service.create_networks("10.0.0.0/8", count, 256, 100, 10000)
        for index, network in enumerate(made):
            if time.monotonic() - beat > 1:
                # A network goes only to a live host; the agents are not running yet.
                for host in cloud.ns:
                    service.heartbeat(host)
                beat = time.monotonic()
            project = f"p{index}"
            service.create_project(project)
            service.modify_network(network.cidr, project=project, host="n1")
            vm = service.launch_instance(project, f"vm{index}", host=COMPUTE)
            pairs.append((network, vm.addresses[0]))
    return pairs


def acks_on(cloud: Cloud, host: str) -> set[tuple[str, str]]:
    """(bridge, address) of every ACK the dnsmasq processes of ``host`` logged."""
    found = set()
    for log in (cloud.root / host / "state").glob("**/dhcp/*.log"):
        for match in ACK.finditer(log.read_text(errors="replace")):
            found.add((match.group(1), match.group(2)))
    return found


def first_apply(cloud: Cloud, serving: str, number: int) -> float:
    """The serving host's networks applied into a fresh namespace, as a whole process."""
    scratch = cloud.lab.host(f"s{number}", wired=False)
    try:
        return cloud.netcon(serving, "host", "apply", "--netns", scratch)
    finally:
        cloud.lab.discard(scratch)


def evacuate(
    cloud: Cloud, dead: str, spare: str, guests: list[Guest], pairs: list[Any]
) -> float | None:
    """Evacuate ``dead`` to ``spare``: seconds until every guest's renewal was ACKed (by
    ``spare``), or None when a guest lost its lease instead."""
    cloud.kill(dead)
    ip("-n", cloud.ns[dead], "link", "set", "und0", "down")
    wait(f"{dead} to be shown down", lambda: not cloud.hosts()[dead].alive, timeout=60)
    before = acks_on(cloud, spare)
    seen = {host: len(agent.lines) for host, agent in cloud.agents.items()}
    started, clock = uptime(), time.monotonic()
    command = cloud.netcon(spare, "host", "evacuate", dead, "--to", spare)
    asked = uptime()
    for guest in guests:
        guest.process.send_signal(signal.SIGUSR1)
    renewed: dict[str, float] = {}
    lost: list[str] = []
    deadline = time.monotonic() + 60
    while len(renewed) + len(lost) < len(guests) and time.monotonic() < deadline:
        for guest in guests:
            if guest.ns in renewed or guest.ns in lost:
                continue
            for stamp, event, _ in guest.seen(after=asked):
                if event == "renew":
                    renewed[guest.ns] = stamp
                elif event in ("deconfig", "leasefail", "bound"):
                    lost.append(guest.ns)
                break
        time.sleep(0.05)
    wait(f"{spare} to record the evacuation", lambda: cloud.hosts()[spare].pending == 0)
    print(f"  netcon host evacuate {dead} --to {spare} (whole process):     {command:6.2f} s")
    for host, agent in cloud.agents.items():
        for stamp, line in agent.lines[seen.get(host, 0) :]:
            if "applied change" in line or "failed" in line:
                said = line.split(" ", 2)[-1][:44]  # after the agent's date and time
                print(f"  agent {host}: {said:<44} {stamp - clock:6.2f} s")
    if lost or len(renewed) < len(guests):
        print(f"  {len(guests) - len(renewed)} guest(s) lost their lease instead of renewing it "
              f"({', '.join(sorted(lost)[:3])}...)")  # fmt: skip
        return None
    if VERBOSE:
        # The last guests to renew, and every lease event they stamped since the start.
        for guest in sorted(guests, key=lambda g: renewed.get(g.ns, 1e9))[-3:]:
            events = [(round(t - started, 2), e) for t, e, _ in guest.seen(started)]
            print(f"    {guest.ns}: {events}")
    served = acks_on(cloud, spare) - before
    mine = sum((network.bridge, fixed.address) in served for network, fixed in pairs)
    first, last = min(renewed.values()) - started, max(renewed.values()) - started
    print(f"  first guest's renewal ACKed {first:6.2f} s, the last {last:6.2f} s; "
          f"{mine} of {len(guests)} ACKed by {spare} ({load()})")  # fmt: skip
    RESULTS.append((f"every renewal ACKed by {spare}", mine == len(guests)))
    return last


def bench(
    stack: ExitStack, root: Path, server_url: str, count: int, rounds: int, retry: int
) -> None:
    cloud = Cloud(stack, root, server_url, rounds)
    print(f"\n{count} networks served by n1, their instances on {COMPUTE} ({load()})")
    pairs = populate(cloud, count)
    for host in cloud.ns:
        cloud.start(host)
    wait(
        "the agents to apply everything",
        lambda: all(h.alive and h.pending == 0 for h in cloud.hosts().values()),
    )
    folder = root / "guests"
    folder.mkdir()
    guests: list[Guest] = []
    stack.callback(lambda: [guest.stop() for guest in guests])
    for index, (network, fixed) in enumerate(pairs):
        ns = cloud.lab.guest(index, cloud.ns[COMPUTE], network.bridge, fixed.mac)
        guests.append(Guest(ns, folder, retry))
    wait(
        "every guest's first lease",
        lambda: all(any(e == "bound" for _, e, _ in g.seen()) for g in guests),
        timeout=120,
    )
    for guest, (_, fixed) in zip(guests, pairs, strict=True):
        leased = [a for _, e, a in guest.seen() if e == "bound"]
        if leased[-1] != fixed.address:
            raise SystemExit(f"{guest.ns} leased {leased[-1]}, not {fixed.address}")
    print(f"  {count} guests hold their lease from n1 ({load()})")

    applies: list[float] = []
    evacuations: list[float] = []
    for number in range(rounds):
        dead, spare = cloud.serving[number], cloud.serving[number + 1]
        print(f"\nround {number + 1}:")
        applies.append(first_apply(cloud, dead, number))
        print(f"  first apply of the {count} networks (netcon host apply, whole process): "
              f"{applies[-1]:.2f} s ({load()})")  # fmt: skip
        seconds = evacuate(cloud, dead, spare, guests, pairs)
        if seconds is not None:
            evacuations.append(seconds)
    failed = rounds - len(evacuations)
    RESULTS.append(("no guest lost its lease", not failed))
    if not evacuations:
        return
    if failed:
        # A guest that lost its lease renewed too late for udhcpc -T RETRY to wait.
        print(f"\n{failed} round(s) of {rounds} had guests lose their lease: left out below")
    apply, evacuation = statistics.median(applies), statistics.median(evacuations)
    print(f"\nmedians of {len(evacuations)} round(s), udhcpc -T {retry}:")
    print(f"  first apply of {count} networks on one host               {apply:6.2f} s")
    print(f"  evacuation, to every guest's renewal ACKed by the new host {evacuation:6.2f} s")
    ratio = evacuation / apply
    report("evacuation / first apply (x)", ratio, f"<= {TARGET}", ratio <= TARGET)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--retry", type=int, default=1, help="udhcpc -T: seconds between a guest's requests"
    )
    parser.add_argument(
        "--server",
        help="a PostgreSQL server URL ending in '/' to use instead of starting one "
        "(postgresql+psycopg://USER@HOST:PORT/); the run creates its database there",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument(
        "--verbose", action="store_true", help="print the last guests' lease events each round"
    )
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    if os.geteuid() != 0:
        print("bench_evacuate.py needs root: it creates network namespaces", file=sys.stderr)
        return 2
    if not Path(NETCON).exists():
        print(f"{NETCON} is missing: pip install -e . first", file=sys.stderr)
        return 2
    if shutil.which("busybox") is None:
        print("busybox is missing (Debian: busybox-static)", file=sys.stderr)
        return 2
    print(f"bench_evacuate: {NETCON}, {load()}")
    root = Path(tempfile.mkdtemp(prefix="nc-bevac-"))
    root.chmod(0o755)
    try:
        with postgres(args.server) as server_url, ExitStack() as stack:
            bench(stack, root, server_url, args.networks, args.rounds, args.retry)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    failed = [label for label, ok in RESULTS if not ok]
    for label in failed:
        print(f"  not met: {label}")
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
