"""Speed of the metadata service from inside guests, as ratios to a baseline measured in
the same run.

    python bench/bench_metadata.py [--guests 20] [--requests 1000] [--repeat 3] [--strict]

Needs root. One fresh network namespace (``nc-bmd-<random>``) holds a network host with
one VLAN network (VXLAN segment) of ``--guests`` instances, each with a key and user
data, brought up by the host layer's apply (which starts the metadata server and its
DNAT); each instance is a guest namespace of its own on the network's bridge, with its
fixed address and a default route via the gateway. Everything is deleted at the end.

Each round, every guest runs one client process (Python's http.client, one new TCP
connection per request, as cloud-init's readers do) that fetches ``--requests /
--guests`` of the paths cloud-init reads at boot, in turn, from
http://169.254.169.254/; all clients start together. Latency is per request (connect to
last byte); throughput is all requests over the time from the first client's start to
the last one's end. The server's own CPU time per request is read from /proc around each
round (the metadata server's database look-ups run in its own process, so they count).

Baseline: the same HTTP library (aiohttp) serving one static file for every path, run
in the network host's namespace on the metadata port, reached by the same guests
through the same DNAT (169.254.169.254:80 to the bridge's gateway) — only the server
differs. Subject and baseline rounds alternate. The metadata server keeps an
instance's answers for 2 s, so most of a guest's burst is served from that cache (as
cloud-init's burst at boot is); the first request of each guest reads the database.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import load_settings  # noqa: E402
from core.linux.metadata.observe import find_servers  # noqa: E402
from core.linux.metadata.spec import ServerFiles  # noqa: E402
from core.linux.ports import port_name  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.service.hostsync import HostSync  # noqa: E402

RESULTS: list[tuple[str, bool]] = []
NETWORK = "10.129.0.0/24"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs1t0bK3dyzX0dNf8XX3bE0m0qBq2rVqv3pQqk6t5cN bench"
USER_DATA = b"#cloud-config\npackages: [nginx]\nruncmd: [systemctl start nginx]\n"
PATHS = [
    "/latest/meta-data/hostname",
    "/latest/meta-data/instance-id",
    "/latest/meta-data/local-ipv4",
    "/latest/meta-data/public-keys/0/openssh-key",
    "/latest/user-data",
    "/openstack/latest/meta_data.json",
    "/openstack/latest/network_data.json",
]

CLIENT = r"""
import http.client, json, sys, time
paths, count, start_at = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
while time.time() < start_at:
    time.sleep(0.0005)
latencies, failures, why, began = [], 0, [], time.time()
for i in range(count):
    t = time.perf_counter()
    conn = http.client.HTTPConnection("169.254.169.254", 80, timeout=10)
    try:
        conn.request("GET", paths[i % len(paths)])
        response = conn.getresponse(); response.read()
        if response.status != 200:
            failures += 1; why.append(f"{paths[i % len(paths)]}: HTTP {response.status}")
    except OSError as exc:
        failures += 1; why.append(f"{paths[i % len(paths)]}: {exc!r}")
    finally:
        conn.close()
    latencies.append(time.perf_counter() - t)
print(json.dumps({"latencies": latencies, "began": began, "ended": time.time(),
                  "failures": failures, "why": why}))
"""

STATIC = r"""
import sys
from pathlib import Path
from aiohttp import web
body = Path(sys.argv[2])
async def handler(request):
    return web.FileResponse(body)
app = web.Application()
app.router.add_get("/{tail:.*}", handler)
web.run_app(app, host="0.0.0.0", port=int(sys.argv[1]), print=None, access_log=None)
"""


def run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(list(argv), input=stdin, text=True, capture_output=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}: {result.stderr.strip()[:300]}")
    return result.stdout


def report(label: str, value: float, target: str, ok: bool) -> None:
    RESULTS.append((label, ok))
    print(f"  {label:<62} {value:8.3f}   target {target:<8} {'PASS' if ok else 'FAIL'}")


@contextmanager
def namespace(name: str) -> Iterator[str]:
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        for pid in run("ip", "netns", "pids", name, check=False).split():
            with suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
        links = run("ip", "-n", name, "-o", "link", "show", check=False).splitlines()
        names = [line.split(":")[1].strip().split("@")[0] for line in links]
        batch = "".join(f"link del {n}\n" for n in names if n != "lo")
        run("ip", "-n", name, "-force", "-batch", "-", stdin=batch, check=False)
        run("ip", "netns", "del", name, check=False)


class Cloud:
    """The network host namespace, its database and its guests."""

    def __init__(self, ns: str, state: Path, guests: int) -> None:
        self.ns = ns
        self.state = state
        for command in (
            "link add und0 type veth peer name und1",
            "link set und0 up",
            "link set und1 up",
            "addr add 192.168.90.1/24 dev und0",
        ):
            run("ip", "-n", ns, *command.split())
        settings = load_settings(
            paths=[],
            host="bench",
            state_dir=str(state / "host"),
            netns=ns,
            public_interface="und1",
            vlan_interface="und0",
            segmentation="vxlan",
        )
        self.service = NetconService(f"sqlite:///{state / 'netcon.db'}", settings, actor="bench")
        self.layer = HostSync(self.service, settings=settings)
        s = self.service
        s.create_project("bench")
        s.create_networks(NETWORK, 1, 256)
        s.add_key("bench", "admin", KEY)
        self.names = [f"vm{i:02d}" for i in range(guests)]
        with s.deferred_changes():
            for name in self.names:
                s.launch_instance("bench", name, key="admin", user_data=USER_DATA)
        self.layer.sync()
        self.guests: list[str] = []

    def plug(self) -> None:
        network = self.service.list_networks()[0]
        prefix = NETWORK.split("/")[1]
        for name in self.names:
            vm = self.service.get_instance(name).instance.addresses[0]
            guest = f"{self.ns}-{name}"
            run("ip", "netns", "add", guest)
            self.guests.append(guest)
            tap = port_name(vm.mac)
            run("ip", "-n", self.ns, "link", "add", tap, "type", "veth", "peer", "name", "eth0",
                "netns", guest)  # fmt: skip
            run("ip", "-n", guest, "link", "set", "eth0", "address", vm.mac)
            run("ip", "-n", self.ns, "link", "set", tap, "master", network.bridge, "up")
            for command in (
                "link set lo up",
                "link set eth0 up",
                f"addr add {vm.address}/{prefix} dev eth0",
                f"route add default via {network.gateway}",
            ):
                run("ip", "-n", guest, *command.split())

    def unplug(self) -> None:
        for guest in self.guests:
            run("ip", "-n", guest, "link", "del", "eth0", check=False)
            run("ip", "netns", "del", guest, check=False)

    def servers(self) -> tuple[int, ...]:
        files = ServerFiles(self.layer.layer.state_dir / "metadata")
        return tuple(p.pid for p in find_servers(files, self.ns))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def burst(cloud: Cloud, requests: int) -> tuple[list[float], float, int]:
    """Every guest's client at once: (latencies, requests per second, failures)."""
    each = requests // len(cloud.guests)
    start_at = time.time() + 2.0 + 0.1 * len(cloud.guests)
    clients = [
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                guest,
                sys.executable,
                "-c",
                CLIENT,
                json.dumps(PATHS),
                str(each),
                str(start_at),
            ],  # fmt: skip
            stdout=subprocess.PIPE,
            text=True,
        )
        for guest in cloud.guests
    ]
    outputs = [json.loads(client.communicate(timeout=300)[0]) for client in clients]
    latencies = [value for out in outputs for value in out["latencies"]]
    began = min(out["began"] for out in outputs)
    ended = max(out["ended"] for out in outputs)
    failures = sum(out["failures"] for out in outputs)
    for reason in sorted({r for out in outputs for r in out["why"]})[:5]:
        print(f"  failed: {reason}", file=sys.stderr)
    return latencies, len(latencies) / (ended - began), failures


@contextmanager
def static_server(cloud: Cloud) -> Iterator[int]:
    """The baseline in the metadata server's place: same port, same DNAT."""
    for pid in cloud.servers():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while cloud.servers() and time.monotonic() < deadline:
        time.sleep(0.05)
    body = cloud.state / "hostname"
    body.write_text("vm00.novalocal")
    port = str(cloud.service.settings.metadata_port)
    server = subprocess.Popen(
        ["ip", "netns", "exec", cloud.ns, sys.executable, "-c", STATIC, port, str(body)]
    )
    try:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ok = subprocess.run(
                ["ip", "netns", "exec", cloud.ns, sys.executable, "-c", probe], capture_output=True
            )
            if ok.returncode == 0:
                break
            time.sleep(0.1)
        yield server.pid  # `ip netns exec` runs the program in its own place
    finally:
        server.terminate()
        server.wait(10)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench(cloud: Cloud, requests: int, repeat: int) -> None:
    subject: list[float] = []
    baseline: list[float] = []
    subject_rates: list[float] = []
    baseline_rates: list[float] = []
    subject_cpu: list[float] = []
    baseline_cpu: list[float] = []
    for _ in range(repeat):
        plan = cloud.layer.sync()  # the apply path brings the metadata server back
        assert not plan.problems, plan.problems
        (server,) = cloud.servers()
        used = cpu_seconds(server)
        latencies, rate, failures = burst(cloud, requests)
        subject_cpu.append((cpu_seconds(server) - used) / requests)
        if failures:
            log = (cloud.layer.layer.state_dir / "metadata" / "server.log").read_text()[-2000:]
            raise RuntimeError(f"{failures} metadata requests failed; the server's log:\n{log}")
        subject += latencies
        subject_rates.append(rate)
        with static_server(cloud) as static:
            used = cpu_seconds(static)
            latencies, rate, failures = burst(cloud, requests)
            baseline_cpu.append((cpu_seconds(static) - used) / requests)
        if failures:
            raise RuntimeError(f"{failures} static requests failed")
        baseline += latencies
        baseline_rates.append(rate)
    cloud.layer.sync()
    ms = 1000.0
    print(
        f"\n{requests} requests from {len(cloud.guests)} guests at once, {repeat} rounds each "
        "(through the DNAT both)"
    )
    print(
        f"  metadata: median {statistics.median(subject) * ms:.2f} ms, "
        f"p99 {percentile(subject, 0.99) * ms:.2f} ms, "
        f"{statistics.median(subject_rates):.0f} requests/s, "
        f"server CPU {statistics.median(subject_cpu) * ms:.3f} ms per request"
    )
    print(
        f"  static file: median {statistics.median(baseline) * ms:.2f} ms, "
        f"p99 {percentile(baseline, 0.99) * ms:.2f} ms, "
        f"{statistics.median(baseline_rates):.0f} requests/s, "
        f"server CPU {statistics.median(baseline_cpu) * ms:.3f} ms per request"
    )
    median_ratio = statistics.median(subject) / statistics.median(baseline)
    p99_ratio = percentile(subject, 0.99) / percentile(baseline, 0.99)
    rate_ratio = statistics.median(subject_rates) / statistics.median(baseline_rates)
    report("median latency, metadata / static file", median_ratio, "<= 2", median_ratio <= 2)
    report("p99 latency, metadata / static file", p99_ratio, "<= 3", p99_ratio <= 3)
    # 20 client processes on a small machine can be what limits the rate: the server's
    # own CPU time per request shows its cost whatever the clients' share.
    cpu_ratio = statistics.median(subject_cpu) / statistics.median(baseline_cpu)
    report("server CPU per request, metadata / static file", cpu_ratio, "<= 3", cpu_ratio <= 3)
    report("throughput, metadata / static file", rate_ratio, ">= 0.5", rate_ratio >= 0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_metadata.py needs root: it creates network namespaces", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="nc-bench-md-"))
    state.chmod(0o755)
    try:
        with namespace(f"nc-bmd-{secrets.token_hex(2)}") as ns:
            cloud = Cloud(ns, state, args.guests)
            try:
                cloud.plug()
                bench(cloud, args.requests, args.repeat)
            finally:
                for pid in cloud.servers():
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                cloud.unplug()
                cloud.layer.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    failed = [label for label, ok in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
