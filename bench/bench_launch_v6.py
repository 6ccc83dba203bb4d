"""What IPv6 adds to a launch, as ratios measured in this run.

    python bench/bench_launch_v6.py [--quick] [--profile]

Two questions from the IPv6 issue, each answered twice: as a person pays for it (the
installed ``netcon instance launch`` as a whole process, start-up included, as a shell
script calls it) and in process (``NetconService.launch_instance``, which is what
explains a whole-process figure):

* a launch into a ``dhcpv6-stateful`` network whose /64 already holds 4,000 instances,
  against one into the same kind of network holding 40 (target: within 1.2x). The
  stateful address is the prefix followed by the IPv4 address's offset (core/ipv6.py),
  so nothing scans the /64: the cost is the IPv4 allocation's, which reads the partial
  index of free rows only;
* a launch into a SLAAC network against one into the same network without IPv6
  (target: no dearer, 1.05x allowing for noise). The SLAAC address is computed from the
  MAC.

Every database is a fresh SQLite file made by the service, each with one FlatDHCP /19
(8,192 addresses) and a project using it, filled by launching through the service. The
launches measured take turns between the databases, so that what else runs on the
machine weighs on all alike; each figure is the quickest of its runs, as the other work on
a shared machine only ever adds to a launch (the medians are printed too). For context each
whole-process figure is also shown against a bare ``python -c "import sqlalchemy"`` (a
standard tool's start-up, no netcon code), without a target.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings, load_settings  # noqa: E402
from core.service import NetconService  # noqa: E402

PYTHON = sys.executable
NETCON = str(Path(sys.executable).parent / "netcon")
IPV4_RANGE = "10.64.0.0/19"  # room for the 4,000 and the launches measured
IPV6_RANGE = "2001:db8:0:40::/64"
CROWDED = 4000
SPARSE = 40
CROWD_TARGET = 1.2
SLAAC_TARGET = 1.05
HOST = "bench-host"


def bench_settings() -> Settings:
    return load_settings(paths=[], quota_fixed_ips=-1, host=HOST, auto_apply=False)


@dataclass
class Cloud:
    """One database with one FlatDHCP network and the project 'bench' on it."""

    url: str
    service: NetconService
    launched: int = 0

    def launch(self, prefix: str) -> None:
        self.service.launch_instance("bench", f"{prefix}{self.launched}")
        self.launched += 1


def make_cloud(directory: Path, name: str, ipv6_mode: str | None, holding: int) -> Cloud:
    url = f"sqlite:///{directory / f'{name}.db'}"
    service = NetconService(url, bench_settings(), actor="bench")
    service.create_networks(
        IPV4_RANGE,
        1,
        8192,
        fixed_range_v6=IPV6_RANGE if ipv6_mode is not None else None,
        ipv6_mode=ipv6_mode,
        manager="flatdhcp",
    )
    service.create_project("bench", "flatdhcp")
    cloud = Cloud(url, service)
    for _ in range(holding):
        cloud.launch("fill")
    return cloud


# -- whole processes ------------------------------------------------------------------


def process_env(directory: Path) -> dict[str, str]:
    """The environment of every process run: a settings file of the bench's own, so no
    netcon.toml of this machine's user changes the figures."""
    config = directory / "config" / "netcon"
    config.mkdir(parents=True, exist_ok=True)
    (config / "netcon.toml").write_text(f'host = "{HOST}"\nquota_fixed_ips = -1\n')
    env = dict(os.environ, XDG_CONFIG_HOME=str(directory / "config"))
    env.pop("NETCON_DATABASE_URL", None)
    return env


def run(argv: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed: {result.stderr.strip()}")
    return elapsed


def cli_launch(cloud: Cloud, env: dict[str, str], prefix: str) -> Callable[[], float]:
    def launch() -> float:
        cloud.launched += 1
        return run(
            [NETCON, "--db", cloud.url, "instance", "launch", "--project", "bench",
             f"{prefix}{cloud.launched}"],
            env,
        )

    return launch


def paired(runs: int, *calls: Callable[[], float]) -> list[float]:
    """The quickest seconds of each call, the calls run in turn ``runs`` times; their
    medians are printed."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for index, call in enumerate(calls):
            times[index].append(call())
    print("  medians: " + ", ".join(f"{statistics.median(t) * 1e3:.2f} ms" for t in times))
    return [min(t) for t in times]


def in_process(cloud: Cloud, prefix: str) -> Callable[[], float]:
    def launch() -> float:
        start = time.perf_counter()
        cloud.launch(prefix)
        return time.perf_counter() - start

    return launch


# -- report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    what: str
    subject: float
    baseline: float
    baseline_name: str
    target: float | None

    @property
    def ratio(self) -> float:
        return self.subject / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "(context)"
        return "PASS" if self.ratio <= self.target else "FAIL"


def print_table(results: Sequence[Result]) -> None:
    header = (
        f"{'measurement':<44} {'subject':>9} {'baseline':>9}  {'(baseline)':<30} "
        f"{'ratio':>6} {'target':>7}  verdict"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        target = f"{r.target:>5.2f}x" if r.target is not None else "     -"
        print(
            f"{r.what:<44} {r.subject * 1e3:>7.2f}ms {r.baseline * 1e3:>7.2f}ms  "
            f"{r.baseline_name:<30} {r.ratio:>5.2f}x {target:>7}  {r.verdict}"
        )


def profile(cloud: Cloud, prefix: str, count: int) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [cloud.launch(prefix) for _ in range(count)])
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer launches measured")
    parser.add_argument("--profile", action="store_true",
                        help="profile 100 in-process launches into the crowded network")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    process_runs, service_runs = (9, 60) if args.quick else (25, 300)

    with tempfile.TemporaryDirectory(prefix="nc-bench-v6-") as name:
        directory = Path(name)
        env = process_env(directory)
        print(f"filling: stateful /64 with {CROWDED} instances...", flush=True)
        start = time.perf_counter()
        crowded = make_cloud(directory, "crowded", "dhcpv6-stateful", CROWDED)
        print(f"  {CROWDED} launches in {time.perf_counter() - start:.1f} s", flush=True)
        sparse = make_cloud(directory, "sparse", "dhcpv6-stateful", SPARSE)
        slaac = make_cloud(directory, "slaac", "slaac", SPARSE)
        ipv4 = make_cloud(directory, "ipv4", None, SPARSE)

        print(f"whole processes: {process_runs} launches into each, in turn...", flush=True)
        bare = lambda: run([PYTHON, "-c", "import sqlalchemy"], env)  # noqa: E731
        p_crowded, p_sparse, p_slaac, p_ipv4, p_bare = paired(
            process_runs,
            cli_launch(crowded, env, "cli"),
            cli_launch(sparse, env, "cli"),
            cli_launch(slaac, env, "cli"),
            cli_launch(ipv4, env, "cli"),
            bare,
        )
        print(f"in process: {service_runs} launches into each, in turn...", flush=True)
        s_crowded, s_sparse, s_slaac, s_ipv4 = paired(
            service_runs,
            in_process(crowded, "svc"),
            in_process(sparse, "svc"),
            in_process(slaac, "svc"),
            in_process(ipv4, "svc"),
        )
        if args.profile:
            profile(crowded, "prof", 100)
        for cloud in (crowded, sparse, slaac, ipv4):
            cloud.service.db.dispose()

    results = [
        Result(f"stateful, {CROWDED} held: netcon instance launch", p_crowded, p_sparse,
               f"same, {SPARSE} held", CROWD_TARGET),
        Result("SLAAC: netcon instance launch", p_slaac, p_ipv4, "same, IPv4-only network",
               SLAAC_TARGET),
        Result(f"stateful, {CROWDED} held: launch_instance()", s_crowded, s_sparse,
               f"same, {SPARSE} held", CROWD_TARGET),
        Result("SLAAC: launch_instance()", s_slaac, s_ipv4, "same, IPv4-only network",
               SLAAC_TARGET),
        Result(f"stateful, {SPARSE} held: netcon instance launch", p_sparse, p_bare,
               "python -c 'import sqlalchemy'", None),
        Result("IPv4-only: netcon instance launch", p_ipv4, p_bare,
               "python -c 'import sqlalchemy'", None),
    ]
    print()
    print_table(results)
    failed = [r for r in results if r.verdict == "FAIL"]
    targets = [r for r in results if r.target is not None]
    print(f"\n{len(targets) - len(failed)} of {len(targets)} targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
