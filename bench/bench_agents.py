"""Speed of `netcon agent` on several network hosts sharing one PostgreSQL: how soon a
committed change is applied by the right host, and what an agent costs while nothing
changes. Figures are printed; ratios are against a baseline measured in the same run.

    python bench/bench_agents.py [--associations 200] [--networks 1000] [--idle 60]
                                 [--only latency|idle] [--strict]

Needs root and PostgreSQL 15 (the server is started for the run, as the test suite
starts it, in a directory of its own). Every host is a fresh network namespace
(``ncb-<purpose>-<random>``) with an underlay and a public interface, kept by its own
`netcon agent --netns NS` process: the installed `netcon` script beside this
interpreter, started as a user starts it. Namespaces are emptied and deleted at the end.

* Change-to-applied latency. Two clouds of three hosts, each in a database of its own:
  one with the agents as shipped (LISTEN/NOTIFY), one with the same agents run with
  ``--poll 1`` (they look at the database once a second). Each cloud has three
  networks, one per host, with instances, and a floating range on each host. The
  associations are made through the service in this process, alternately in the two
  clouds, each after a pause of 0 to 1 s (uniform), so that changes meet the polling
  agent anywhere in its period, as a person's changes do. A change is timed from the
  moment its commit has returned to the moment the agent of its host says it has
  applied and recorded it (the agent writes that line on its stderr after
  `record_applied` commits; this process reads it from a pipe).
  Targets: median under 50 ms, and at most 1/20 of the polling agent's median.
* Idle cost: ``--networks`` networks (one instance each) spread over three hosts, the
  agents with their shipped settings (heartbeat every host_down_time / 4, re-sync every
  agent_resync seconds). After every host has applied everything, each agent's CPU time
  (utime + stime of /proc/PID/stat, and of the children it waited for) over ``--idle``
  seconds, per minute, as a share of one core. Target: under 1%. Then changes for one
  host alone (instances launched into its networks, floating IPs associated): the
  other agents must start no apply (their "applied change" lines are counted) and the
  changes' latency on this large cloud is printed.

The machine may be shared: the load average is printed with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from hostbench import namespace  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.service.hostsync import HostSync  # noqa: E402
from tests.conftest import PostgresServer  # noqa: E402

PYTHON = sys.executable
NETCON = str(Path(PYTHON).parent / "netcon")
HOSTS = ("h1", "h2", "h3")
APPLIED = re.compile(r"applied change (\d+)")
RESULTS: list[tuple[str, bool]] = []


def report(label: str, value: float, target: str, ok: bool) -> None:
    RESULTS.append((label, ok))
    print(f"  {label:<52} {value:9.2f}   target {target:<9} {'PASS' if ok else 'FAIL'}")


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class AgentProcess:
    """One `netcon agent` process; its stderr lines are read as they come, each stamped
    with the monotonic time it arrived."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[tuple[float, str]] = []
        self.changed = threading.Condition()
        assert self.process.stderr is not None
        threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self.changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.changed.notify_all()

    def applies(self) -> int:
        with self.changed:
            return sum(1 for _, line in self.lines if APPLIED.search(line))

    def applied_at(self, change: int, timeout: float = 30.0) -> float:
        """When this agent said it applied ``change`` (or a later one)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for stamp, line in self.lines:
                    found = APPLIED.search(line)
                    if found and int(found.group(1)) >= change:
                        return stamp
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    tail = "\n".join(line for _, line in self.lines[-10:])
                    raise SystemExit(f"change {change} was not applied:\n{tail}")
                self.changed.wait(left)

    def cpu_seconds(self) -> float:
        """CPU time of the process and of the children it waited for."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cloud:
    """Three hosts (namespaces) on one PostgreSQL database, each with its agent."""

    def __init__(
        self, stack: ExitStack, root: Path, server_url: str, name: str, poll: float | None
    ) -> None:
        with psycopg.connect(
            server_url.replace("postgresql+psycopg://", "postgresql://") + "postgres",
            autocommit=True,
        ) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        self.url = f"{server_url}{name}"
        self.root = root / name
        self.poll = poll
        self.ns: dict[str, str] = {}
        self.env: dict[str, dict[str, str]] = {}
        self.agents: dict[str, AgentProcess] = {}
        for host in HOSTS:
            self.ns[host] = stack.enter_context(namespace(f"{name[:3]}{host[1:]}"))
            config = self.root / host / "config" / "netcon"
            config.mkdir(parents=True)
            state = self.root / host / "state"
            state.mkdir()
            for folder in (root, self.root, self.root / host, state):
                folder.chmod(0o755)  # dnsmasq reads its files as nobody
            values = {
                "host": host,
                "state_dir": str(state),
                "vlan_interface": "und0",
                "public_interface": "und1",
                "segmentation": "vxlan",
                "quota_floating_ips": -1,
            }
            config.joinpath("netcon.toml").write_text(
                "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
            )
            self.env[host] = dict(
                os.environ,
                XDG_CONFIG_HOME=str(config.parent),
                NETCON_DATABASE_URL=self.url,
            )
        self.service = NetconService(self.url, self.settings("h1"), actor="bench")
        stack.callback(self.stop)

    def settings(self, host: str) -> Any:
        return load_settings(paths=[self.root / host / "config" / "netcon" / "netcon.toml"])

    def start(self) -> None:
        for host in HOSTS:
            argv = [NETCON, "agent", "--netns", self.ns[host]]
            if self.poll is not None:
                argv += ["--poll", str(self.poll)]
            self.agents[host] = AgentProcess(argv, self.env[host])

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.service.db.dispose()

    def wait_applied(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hosts = {view.name: view for view in self.service.list_hosts()}
            if all(h in hosts and hosts[h].alive and hosts[h].pending == 0 for h in HOSTS):
                return
            time.sleep(0.5)
        raise SystemExit("the agents did not apply every change in time")

    def converged(self) -> bool:
        """Every host's full plan is empty: the agents left nothing undone."""
        for host in HOSTS:
            layer = HostSync(self.service, settings=self.settings(host), netns=self.ns[host])
            try:
                if layer.plan().describe():
                    return False
            finally:
                layer.close()
        return True


def populate(cloud: Cloud, networks: int, instances: int, floating: int) -> list[list[str]]:
    """``networks`` networks over the three hosts with ``instances`` instances each, and
    ``floating`` floating addresses allocated on each host; returns per host the
    (address, instance) pairs ready to associate, in host order."""
    service = cloud.service
    beat = 0.0
    with service.deferred_changes():
        made = service.create_networks("10.0.0.0/8", networks, 256, 100)
        for index, network in enumerate(made):
            if time.monotonic() - beat > 10:
                # A network goes only to a live host; the agents are not running yet.
                for host in HOSTS:
                    service.heartbeat(host)
                beat = time.monotonic()
            project = f"p{index}"
            service.create_project(project)
            service.modify_network(network.cidr, project=project, host=HOSTS[index % 3])
            for number in range(instances):
                service.launch_instance(project, f"vm{index}-{number}")
    pairs: list[list[str]] = []
    for slot, host in enumerate(HOSTS):
        service.create_floating_range(host, f"198.18.{slot}.0/24", pool=f"pool{slot}")
        mine = [index for index in range(networks) if index % 3 == slot]
        chosen = []
        for count in range(min(floating, len(mine) * instances)):
            index = mine[count % len(mine)]
            instance = f"vm{index}-{count // len(mine)}"
            address = service.allocate_floating_ip(f"p{index}", f"pool{slot}").address
            chosen.append(f"{address} {instance}")
        pairs.append(chosen)
    return pairs


def associate(cloud: Cloud, pair: str) -> tuple[str, float]:
    """Associate one floating IP; the host that NATs it, and the seconds from the
    commit's return to that host's agent having applied it."""
    address, instance = pair.split()
    view = cloud.service.associate_floating_ip(address, instance)
    committed = time.monotonic()
    change = cloud.service.last_change
    assert change is not None and view.host is not None
    return view.host, cloud.agents[view.host].applied_at(change.change) - committed


# -- change-to-applied latency ---------------------------------------------------------


def bench_latency(stack: ExitStack, root: Path, server_url: str, count: int) -> None:
    print(f"\nChange-to-applied latency: {count} floating-IP associations per cloud, 3 hosts")
    listen = Cloud(stack, root, server_url, "listen", poll=None)
    polling = Cloud(stack, root, server_url, "polling", poll=1.0)
    work: dict[str, list[str]] = {}
    per_host = -(-count // 3)
    for cloud in (listen, polling):
        pairs = populate(cloud, 3, per_host, per_host)
        # Round-robin over the hosts, so every agent takes its share.
        work[cloud.url] = [p for group in zip(*pairs, strict=True) for p in group][:count]
        cloud.start()
    for cloud in (listen, polling):
        cloud.wait_applied()
    print(f"  agents running and converged ({load()})")
    times: dict[str, list[float]] = {listen.url: [], polling.url: []}
    stray: dict[str, int] = {}
    for index in range(count):
        # Interleaved, and each cloud goes first every other time.
        order = (listen, polling) if index % 2 == 0 else (polling, listen)
        for cloud in order:
            # A change comes at any moment: the polling agent is met anywhere in its period.
            time.sleep(random.uniform(0.0, 1.0))
            before = {h: a.applies() for h, a in cloud.agents.items()}
            host, seconds = associate(cloud, work[cloud.url][index])
            times[cloud.url].append(seconds)
            for other in HOSTS:
                if other != host:
                    woke = cloud.agents[other].applies() - before[other]
                    stray[cloud.url] = stray.get(cloud.url, 0) + woke
    fast, slow = times[listen.url], times[polling.url]
    print(f"  ({load()}; associations made through the service in this process)")
    print(
        f"  LISTEN agent:   median {statistics.median(fast) * 1000:7.1f} ms   "
        f"p99 {percentile(fast, 0.99) * 1000:7.1f} ms   max {max(fast) * 1000:7.1f} ms"
    )
    print(
        f"  --poll 1 agent: median {statistics.median(slow) * 1000:7.1f} ms   "
        f"p99 {percentile(slow, 0.99) * 1000:7.1f} ms   max {max(slow) * 1000:7.1f} ms"
    )
    report("median change-to-applied, LISTEN (ms)", statistics.median(fast) * 1000, "< 50",
           statistics.median(fast) < 0.050)  # fmt: skip
    ratio = statistics.median(slow) / statistics.median(fast)
    report("polling median / LISTEN median (x)", ratio, ">= 20", ratio >= 20)
    print(f"  applies by agents the change did not concern: {stray.get(listen.url, 0)}")
    RESULTS.append(("no other agent applied", stray.get(listen.url, 0) == 0))
    for cloud in (listen, polling):
        cloud.stop()
    done = listen.converged() and polling.converged()
    print(f"  (afterwards every host's full plan is empty: {done})")
    RESULTS.append(("latency: hosts converged", done))


# -- idle cost -------------------------------------------------------------------------


def bench_idle(stack: ExitStack, root: Path, server_url: str, networks: int, idle: float) -> None:
    print(f"\nIdle cost: {networks} networks (one instance each) over 3 hosts")
    cloud = Cloud(stack, root, server_url, "idle", poll=None)
    started = time.monotonic()
    pairs = populate(cloud, networks, 1, 20)
    print(f"  database filled in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    cloud.start()
    cloud.wait_applied()
    print(f"  agents brought the hosts up in {time.monotonic() - started:.1f} s ({load()})")
    time.sleep(2.0)
    before = {host: agent.cpu_seconds() for host, agent in cloud.agents.items()}
    started = time.monotonic()
    time.sleep(idle)
    elapsed = time.monotonic() - started
    print(f"  {elapsed:.0f} s with no change ({load()}):")
    for host, agent in cloud.agents.items():
        used = agent.cpu_seconds() - before[host]
        share = used / elapsed * 100
        print(f"    agent {host}: {used * 1000:7.1f} ms CPU = {used / elapsed * 60:6.3f} s/min")
        report(f"agent {host} idle CPU (% of one core)", share, "< 1", share < 1)

    # Changes for h1 alone: launches into its networks, then floating associations.
    counted = {host: agent.applies() for host, agent in cloud.agents.items()}
    cpu = {host: agent.cpu_seconds() for host, agent in cloud.agents.items()}
    h1_networks = [index for index in range(networks) if index % 3 == 0]
    launches: list[float] = []
    for number, index in enumerate(h1_networks[:20]):
        cloud.service.launch_instance(f"p{index}", f"late{number}")
        committed = time.monotonic()
        change = cloud.service.last_change
        assert change is not None
        launches.append(cloud.agents["h1"].applied_at(change.change) - committed)
    associations = [associate(cloud, pair) for pair in pairs[0]]
    time.sleep(1.0)
    print(f"  40 changes for h1 ({load()}):")
    print(f"    instance launch, change-to-applied: median "
          f"{statistics.median(launches) * 1000:.1f} ms")  # fmt: skip
    latencies = [seconds for _, seconds in associations]
    middle, worst = statistics.median(latencies) * 1000, max(latencies) * 1000
    print(f"    floating association, change-to-applied: median {middle:.1f} ms, max {worst:.1f}")
    for host, agent in cloud.agents.items():
        woke = agent.applies() - counted[host]
        used = agent.cpu_seconds() - cpu[host]
        print(f"    agent {host}: {woke} apply(s), {used * 1000:.0f} ms CPU")
        if host != "h1":
            RESULTS.append((f"a change for h1 woke no apply on {host}", woke == 0))
    cloud.stop()
    done = cloud.converged()
    print(f"  (afterwards every host's full plan is empty: {done})")
    RESULTS.append(("idle: hosts converged", done))


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    server = PostgresServer()
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--associations", type=int, default=200)
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds with no change")
    parser.add_argument(
        "--server",
        help="a PostgreSQL server URL ending in '/' to use instead of starting one "
        "(postgresql+psycopg://USER@HOST:PORT/); the run creates its databases there",
    )
    parser.add_argument("--only", choices=("latency", "idle"), help="run one part")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_agents.py needs root: it creates network namespaces", file=sys.stderr)
        return 2
    if not Path(NETCON).exists():
        print(f"{NETCON} is missing: pip install -e . first", file=sys.stderr)
        return 2
    print(f"bench_agents: {NETCON}, 2 x 3 hosts, {load()}")
    root = Path(tempfile.mkdtemp(prefix="nc-bagent-"))
    root.chmod(0o755)
    try:
        with postgres(args.server) as server_url:
            if args.only in (None, "latency"):
                with ExitStack() as stack:
                    bench_latency(stack, root, server_url, args.associations)
            if args.only in (None, "idle"):
                with ExitStack() as stack:
                    bench_idle(stack, root, server_url, args.networks, args.idle)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    failed = [label for label, ok in RESULTS if not ok]
    for label in failed:
        print(f"  not met: {label}")
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
