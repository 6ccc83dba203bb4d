"""What the host benches share: their command line, a database and netcon.toml for the
`netcon` they time, fresh network namespaces, whole processes timed, and the targets.

Used by bench_host.py and bench_first_apply.py. Needs root (namespaces). The `netcon`
timed is the one installed beside this interpreter.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import load_settings  # noqa: E402
from core.linux import processes  # noqa: E402
from core.linux.metadata.spec import PROGRAMS as METADATA_PROGRAMS  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.service.hostsync import HostSync  # noqa: E402

PYTHON = sys.executable
NETCON = str(Path(PYTHON).parent / "netcon")
UNDERLAY = "192.168.90.1/24"
RESULTS: list[tuple[str, bool]] = []


def ip(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", *argv], input=stdin, text=True, check=True, capture_output=True)


def in_ns(ns: str, *argv: str) -> str:
    """What ``argv`` prints, run in ``ns``."""
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True
    ).stdout


def compile_netcon() -> None:
    """Byte-compile netcon's code, as installing it does: an editable install under
    PYTHONDONTWRITEBYTECODE would otherwise compile every module in every timed process,
    while the SQLAlchemy of the baseline comes compiled."""
    root = Path(__file__).resolve().parent.parent
    for package in ("core", "tui"):
        compileall.compile_dir(root / package, quiet=1)


def median(values: list[float]) -> float:
    return statistics.median(values)


def load() -> str:
    """The load average now: other work on the machine moves every figure here."""
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(label: str, value: float, target: str, ok: bool) -> None:
    RESULTS.append((label, ok))
    print(f"  {label:<60} {value:8.3f}   target {target:<8} {'PASS' if ok else 'FAIL'}")


def check(label: str, ok: bool) -> None:
    """A condition of a figure (the same work done, say), counted with the targets."""
    RESULTS.append((label, ok))


# -- the cloud, its configuration and its namespaces ------------------------------------


def timed_netcon(env: dict[str, str], *argv: str) -> float:
    """Run `netcon ARGV` with ``env`` as a whole process; its wall time (a failure ends
    the bench, saying why)."""
    start = time.perf_counter()
    result = subprocess.run([NETCON, *argv], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"netcon {' '.join(argv)} failed: {result.stderr.strip()}")
    return elapsed


class Cloud:
    """A database, a state directory and a netcon.toml for the `netcon` processes."""

    def __init__(self, root: Path, name: str, **settings: object) -> None:
        self.root = root / name
        self.state = self.root / "state"
        self.state.mkdir(parents=True)
        for folder in (root, self.root, self.state):
            folder.chmod(0o755)  # dnsmasq reads its files as nobody
        self.url = f"sqlite:///{self.root / 'netcon.db'}"
        values: dict[str, object] = {
            "host": "bench",
            "state_dir": str(self.state),
            "vlan_interface": "und0",
            "public_interface": "und1",
            "segmentation": "vxlan",
            "quota_floating_ips": -1,
            **settings,
        }
        config = self.root / "config" / "netcon"
        config.mkdir(parents=True)
        config.joinpath("netcon.toml").write_text(
            "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        )
        self.settings = load_settings(paths=[config / "netcon.toml"])
        self.env = dict(
            os.environ, XDG_CONFIG_HOME=str(self.root / "config"), NETCON_DATABASE_URL=self.url
        )
        self.service = NetconService(self.url, self.settings, actor="bench")

    def netcon(self, *argv: str) -> float:
        """Run `netcon ARGV` as a whole process; its wall time."""
        return timed_netcon(self.env, *argv)

    def plan_is_empty(self, ns: str, *, stand_in_server: bool = False) -> bool:
        """Whether `netcon host plan` finds nothing to change in ``ns`` (what it would
        change is printed, in part, when not). With ``stand_in_server``, a script made
        ``ns`` with another program in place of netcon's metadata server: starting
        netcon's is the one change left."""
        result = subprocess.run(
            [NETCON, "--json", "host", "plan", "--netns", ns],
            env=self.env,
            capture_output=True,
            text=True,
        )
        document = json.loads(result.stdout or "{}")
        operations = document.get("operations")
        if stand_in_server and operations:
            operations = [o for o in operations if not o.startswith("start metadata server")]
        if operations:
            print(f"    (plan not empty: {operations[:3]})")
        return result.returncode == 0 and operations == []

    def layer(self, ns: str) -> HostSync:
        return HostSync(self.service, settings=self.settings, netns=ns)


@contextmanager
def namespace(purpose: str) -> Iterator[str]:
    """A fresh namespace (``ncb-<purpose>-<random>``) with loopback up and a veth pair
    for underlay (und0, holding UNDERLAY) and public side (und1); emptied and deleted
    afterwards."""
    # Short enough for a setting (netns names an interface-like name, at most 15).
    name = f"ncb-{purpose}-{secrets.token_hex(2)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "und0", "type", "veth", "peer", "name", "und1")
        ip("-n", name, "link", "set", "und0", "up")
        ip("-n", name, "link", "set", "und1", "up")
        ip("-n", name, "addr", "add", UNDERLAY, "dev", "und0")
        yield name
    finally:
        empty(name)


def empty(name: str) -> None:
    """Stop what runs in the namespace, delete its interfaces, then the namespace."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    alive = [int(pid) for pid in pids.stdout.split()]
    # The metadata server runs outside the namespace (it only listens there): found by
    # the namespace its command line names.
    alive += [
        found.pid
        for program in sorted(METADATA_PROGRAMS)
        for found in processes.find(program, name, None)
    ]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if os.path.exists(f"/proc/{pid}")]
        time.sleep(0.05)
    links = subprocess.run(
        ["ip", "-n", name, "-o", "link", "show"], capture_output=True, text=True
    ).stdout.splitlines()
    names = [line.split(":")[1].strip().split("@")[0] for line in links]
    # Bridges first: the VXLAN links go with their underlay.
    order = sorted((n for n in names if n != "lo"), key=lambda n: not n.startswith("br"))
    batch = "".join(f"link del {n}\n" for n in order)
    subprocess.run(
        ["ip", "-n", name, "-force", "-batch", "-"], input=batch, text=True, capture_output=True
    )
    ip("netns", "del", name)
    # Let the kernel finish tearing down before anything else is timed.
    time.sleep(1.0)


def run_script(text: str, ns: str, folder: Path) -> float:
    """Run the shell script ``text`` in ``ns`` as a whole process; its wall time."""
    path = folder / f"apply-{ns}.sh"
    path.write_text(text)
    start = time.perf_counter()
    subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "sh", str(path)], check=True)
    return time.perf_counter() - start


# -- the command line and the run ---------------------------------------------------------


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options every host bench has (--repeat, --strict); a bench adds its own."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    return parser


def run(program: str, prefix: str, steps: Callable[[Path], None], strict: bool) -> int:
    """Run ``steps`` in a fresh root folder, stop every daemon of it that outlived its
    namespace, and sum up the targets; the exit status."""
    if os.geteuid() != 0:
        print(f"{program} needs root: it creates network namespaces", file=sys.stderr)
        return 2
    if not Path(NETCON).exists():
        print(f"{NETCON} is missing: pip install -e . first", file=sys.stderr)
        return 2
    compile_netcon()
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        steps(root)
    finally:
        # Daemons of this run that outlived their namespace (none should).
        for found in processes.find("dnsmasq", f"{root}/", None):
            with contextlib.suppress(ProcessLookupError):
                os.kill(found.pid, signal.SIGTERM)
        shutil.rmtree(root, ignore_errors=True)
    failed = [label for label, ok in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} targets met")
    return 1 if failed and strict else 0
