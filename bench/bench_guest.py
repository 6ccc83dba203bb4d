"""A dnsmasq restart under 5,000 leased guests: the time from the restart until every
guest's renewal is ACKed, against the same dnsmasq started with a lease file that already
holds the 5,000 leases, measured in the same run.

    python bench/bench_guest.py [--leases 5000] [--repeat 3]

Needs root. One FlatDHCP network of 5,000 instances (each address leased in the
database) is served from a fresh network namespace (``ncg-nh-<random>``) by the dnsmasq
of `netcon host apply`, the `netcon` installed beside this interpreter, with a
netcon.toml of its own.

The guests are emulated: one Python process in a second namespace sends each guest's
renewal (a DHCPREQUEST in the RENEWING state: its address in ciaddr, no server
identifier, its own chaddr and xid) unicast to the gateway, resends it every second
until it is answered (at most 64 unanswered at a time), and stops once every one is
ACKed. It sends them as a relay agent on the guests' subnet would (giaddr set to its own
address), so that dnsmasq answers it at one address: unicast answers to 5,000 guest
addresses would need 5,000 neighbour entries on the network host, beyond the kernel's
table limit, which every namespace on the machine shares (gc_thresh3, 1,024 by default).

* Subject: the running dnsmasq is stopped; at the moment the renewals start,
  `netcon host apply` runs as a whole process and starts dnsmasq again, which learns the
  leases through its script's ``init`` from the database.
* Baseline: the same dnsmasq command line, with the lease file that ``init`` replaces
  (``--dhcp-leasefile`` holding the same 5,000 leases, no lease script), started at the
  moment the renewals start.

Printed: the median of each over --repeat rounds (interleaved), and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hostbench import timed_netcon  # noqa: E402
from sqlalchemy import update  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.store.schema import fixed_ips  # noqa: E402

PYTHON = sys.executable
NETCON = str(Path(PYTHON).parent / "netcon")
SUBNET = ipaddress.IPv4Network("10.60.0.0/18")
GATEWAY = "10.60.0.1"
EMULATOR_ADDRESS = "10.60.63.250"
BRIDGE = "brguest"

EMULATOR = r"""
import json, random, select, socket, struct, sys, time
guests = json.load(open(sys.argv[1])); gateway = sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
relay = sys.argv[3]
s.bind((relay, 67)); s.setblocking(False)
requests = {}
for index, (mac, address) in enumerate(guests):
    xid = random.randrange(1 << 32)
    body = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 1, xid, 0, 0,
                       socket.inet_aton(address), bytes(4), bytes(4), socket.inet_aton(relay))
    body += bytes.fromhex(mac.replace(":", "")) + bytes(10 + 64 + 128) + b"\x63\x82\x53\x63"
    body += bytes([53, 1, 3, 255])
    requests[xid] = body
print("ready", flush=True)
sys.stdin.readline()
started = time.monotonic()
pending = dict(requests); last_sent = {}; naks = 0; sent = 0; window = 64
while pending:
    now = time.monotonic()
    budget = window
    for xid, body in pending.items():
        if budget == 0:
            break
        if now - last_sent.get(xid, -1.0) >= 1.0:
            try:
                s.sendto(body, (gateway, 67)); sent += 1
            except OSError:
                pass
            last_sent[xid] = now
        budget -= 1
    ready, _, _ = select.select([s], [], [], 0.01)
    while ready:
        try:
            reply = s.recv(2048)
        except BlockingIOError:
            break
        xid = struct.unpack_from("!I", reply, 4)[0]
        kind = reply[reply.find(b"\x35\x01", 240) + 2] if b"\x35\x01" in reply[240:] else 0
        if kind == 5:
            pending.pop(xid, None)
        elif kind == 6:
            naks += 1
    if time.monotonic() - started > 900:
        break
print(json.dumps({"seconds": time.monotonic() - started, "unanswered": len(pending),
                  "naks": naks, "sent": sent}), flush=True)
"""


def run(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), text=True, capture_output=True, check=True, **kwargs)  # type: ignore[call-overload]


def in_ns(ns: str, *argv: str) -> None:
    run("ip", "netns", "exec", ns, *argv)


class Bench:
    def __init__(self, root: Path, leases: int) -> None:
        self.root = root
        self.tag = secrets.token_hex(2)
        self.host_ns = f"ncg-nh-{self.tag}"
        self.guest_ns = f"ncg-gu-{self.tag}"
        self.state = root / "state"
        self.state.mkdir(parents=True)
        for folder in (root, self.state):
            folder.chmod(0o755)  # dnsmasq reads its files as nobody
        self.url = f"sqlite:///{root / 'netcon.db'}"
        values = {
            "host": "bench",
            "state_dir": str(self.state),
            "netns": self.host_ns,
            "public_interface": "pub0",
            "network_manager": "flatdhcp",
            "dhcp_lease_time": 3600,
            "dns_servers": ["192.0.2.53"],
            # One port speaks for every emulated guest: no instance's, so it is trusted.
            "trusted_ports": ["gport"],
        }
        config = root / "config" / "netcon"
        config.mkdir(parents=True)
        config.joinpath("netcon.toml").write_text(
            "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        )
        self.settings = load_settings(paths=[config / "netcon.toml"])
        self.env = dict(
            os.environ, XDG_CONFIG_HOME=str(root / "config"), NETCON_DATABASE_URL=self.url
        )
        self.leases = leases

    # -- the cloud ---------------------------------------------------------------------

    def populate(self) -> list[tuple[str, str]]:
        service = NetconService(self.url, self.settings, actor="bench")
        service.create_project("guests", manager="flatdhcp")
        (network,) = service.create_networks(
            str(SUBNET), 1, SUBNET.num_addresses, manager="flatdhcp", bridge=BRIDGE
        )
        self.network_id = network.id
        guests = []
        with service.deferred_changes():
            for index in range(self.leases):
                view = service.launch_instance("guests", f"g{index}")
                guests.append((view.addresses[0].mac, view.addresses[0].address))
        # Every guest holds its lease, as the lease script would have recorded.
        with service.db.write() as connection:
            connection.execute(
                update(fixed_ips).where(fixed_ips.c.instance_id.is_not(None)).values(leased=True)
            )
        return guests

    def namespaces(self) -> None:
        for ns in (self.host_ns, self.guest_ns):
            run("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(self.host_ns, "ip", "link", "add", "pub0", "type", "veth", "peer", "name", "pub1")
        for name in ("pub0", "pub1"):
            in_ns(self.host_ns, "ip", "link", "set", name, "up")
        in_ns(self.host_ns, "ip", "addr", "add", "203.0.113.2/24", "dev", "pub0")

    def plug_guests(self) -> None:
        run(
            "ip", "link", "add", "gport", "netns", self.host_ns, "type", "veth",
            "peer", "name", "eth0", "netns", self.guest_ns,
        )  # fmt: skip
        in_ns(self.host_ns, "ip", "link", "set", "gport", "master", BRIDGE, "up")
        in_ns(self.guest_ns, "ip", "link", "set", "eth0", "up")
        in_ns(self.guest_ns, "ip", "addr", "add", f"{EMULATOR_ADDRESS}/{SUBNET.prefixlen}",
              "dev", "eth0")  # fmt: skip

    def netcon(self, *argv: str) -> float:
        return timed_netcon(self.env, *argv)

    def init_output(self) -> str:
        result = subprocess.run(
            [NETCON, "dhcp-event", "init"],
            env=dict(self.env, NETWORK_ID=str(self.network_id), DHCP_LEASE_TIME="3600"),
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    # -- dnsmasq ---------------------------------------------------------------------

    def argv_now(self) -> tuple[str, ...]:
        pid_file = self.state / f"netns-{self.host_ns}" / "dhcp" / f"{BRIDGE}.pid"
        pid = int(pid_file.read_text())
        return tuple(Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1])

    def stop_all(self) -> float:
        """Stop every process in the network host's namespace; how long they took to go."""
        pids = subprocess.run(
            ["ip", "netns", "pids", self.host_ns], capture_output=True, text=True
        ).stdout.split()
        began = time.perf_counter()
        for pid in map(int, pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 120
        while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        took = time.perf_counter() - began
        if os.environ.get("BENCH_DEBUG"):
            print(f"    stopped {len(pids)} process(es) in {took:.3f} s", flush=True)
        return took

    def emulate(self, guests_file: Path, start: list[str]) -> tuple[float, dict[str, float]]:
        """Renewals from every guest, begun when ``start`` runs; the emulator's figures."""
        emulator = subprocess.Popen(
            ["ip", "netns", "exec", self.guest_ns, PYTHON, "-c", EMULATOR, str(guests_file),
             GATEWAY, EMULATOR_ADDRESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert emulator.stdin is not None and emulator.stdout is not None
        assert emulator.stdout.readline().strip() == "ready"
        emulator.stdin.write("go\n")
        emulator.stdin.flush()
        began = time.perf_counter()
        starter = subprocess.run(start, env=self.env, capture_output=True, text=True)
        started = time.perf_counter() - began
        if starter.returncode != 0:
            emulator.kill()
            raise SystemExit(f"{' '.join(start)} failed: {starter.stderr.strip()}")
        figures: dict[str, float] = json.loads(emulator.stdout.readline())
        emulator.wait()
        if figures["unanswered"]:
            log = self.state / f"netns-{self.host_ns}" / "dhcp" / f"{BRIDGE}.log"
            if os.environ.get("BENCH_DEBUG") and log.exists():
                print(log.read_text()[-3000:])
                print(
                    subprocess.run(
                        ["ip", "netns", "pids", self.host_ns], capture_output=True, text=True
                    ).stdout
                )
            raise SystemExit(f"{figures['unanswered']:.0f} renewals were never ACKed")
        return started, figures

    def cleanup(self) -> None:
        self.stop_all()
        for ns, links in ((self.guest_ns, ["eth0"]), (self.host_ns, ["gport", "pub0", BRIDGE])):
            for link in links:
                subprocess.run(["ip", "-n", ns, "link", "del", link], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it creates network namespaces")
    root = Path(tempfile.mkdtemp(prefix="ncg-bench-"))
    bench = Bench(root, args.leases)
    try:
        print(f"populating {args.leases} leased instances ...", flush=True)
        began = time.perf_counter()
        guests = bench.populate()
        print(f"  ({time.perf_counter() - began:.1f} s)", flush=True)
        guests_file = root / "guests.json"
        guests_file.write_text(json.dumps(guests))
        bench.namespaces()
        bench.netcon("host", "apply")
        bench.plug_guests()
        argv = bench.argv_now()
        lease_file = root / "baseline.leases"
        lease_file.write_text(bench.init_output())
        lease_file.chmod(0o666)
        baseline_argv = [
            word
            for word in argv
            if word != "--leasefile-ro" and not word.startswith(("--dhcp-script=", "--pid-file="))
        ] + [f"--dhcp-leasefile={lease_file}", f"--pid-file={root}/baseline.pid"]
        print(
            f"{len(lease_file.read_text().splitlines())} leases; {args.repeat} rounds", flush=True
        )
        subject: list[float] = []
        baseline: list[float] = []
        applies: list[float] = []
        for _ in range(args.repeat):
            # The lease file is rewritten by the baseline's dnsmasq: start each from it anew.
            lease_file.write_text(bench.init_output())
            bench.stop_all()
            _, figures = bench.emulate(
                guests_file, ["ip", "netns", "exec", bench.host_ns, *baseline_argv]
            )
            baseline.append(figures["seconds"])
            if os.environ.get("BENCH_DEBUG"):
                print("    baseline", figures)
            bench.stop_all()
            apply_time, figures = bench.emulate(guests_file, [NETCON, "host", "apply"])
            subject.append(figures["seconds"])
            applies.append(apply_time)
            print(
                f"  round: baseline {baseline[-1]:.3f} s, netcon {subject[-1]:.3f} s "
                f"(host apply {apply_time:.3f} s, {figures['sent']:.0f} requests sent)",
                flush=True,
            )
        s, b = statistics.median(subject), statistics.median(baseline)
        print()
        print(f"dnsmasq restart under {len(guests)} leased guests, until every renewal is ACKed")
        print(f"  netcon host apply (leases from the database via init)  {s:8.3f} s")
        print(f"  same dnsmasq with a lease file holding the leases      {b:8.3f} s")
        print(f"  ratio netcon / lease file                              {s / b:8.2f}")
        print(f"  netcon host apply alone, whole process (median)        "
              f"{statistics.median(applies):8.3f} s")  # fmt: skip
    finally:
        bench.cleanup()
        subprocess.run(["rm", "-rf", str(root)])


if __name__ == "__main__":
    main()
