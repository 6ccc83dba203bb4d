"""What keeps a gateway from answering on two hosts once the process in charge of it on
the first host is struck: netcon's heartbeat lease in the kernel, against VRRP
(keepalived, as Neutron's HA routers use), measured under the same faults in the same run.

    python bench/bench_fencing.py [--lease 3]

Needs root and keepalived (Debian: keepalived). Three namespaces on one switch bridge
(``ncf-*-<random>``): hosts A and B, and a guest C that sends an ARP request for the
gateway address every 0.1 s and records which host's MAC answers.

* netcon: A's address carries a lifetime that ends with its lease and is renewed after
  every heartbeat (every lease/4 s) by a process standing in for `netcon agent`, built of
  the agent's own parts (core.linux.lease and core.linux.netlink's requests); like the
  agent, it stops serving without renewing once it finds its lease lapsed. B brings the
  address up once A's lease can have lapsed, as an evacuation after host_down_time does.
* VRRP: keepalived on A (master, priority 150) and on B (backup, 100), advert_int 1 s,
  the gateway as virtual address; B takes over by itself when A's adverts stop.

Faults, each struck at A's process(es): SIGKILL (a crash; the OOM killer sends the
same), SIGSTOP and SIGCONT once B has taken over, SIGTERM (systemctl stop).

Printed for each: how long after the strike A last answered ("still" when it was still
answering at the end of the window), how many seconds both hosts answered, and whether A
answered again after SIGCONT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GATEWAY = "10.99.0.1"
HOSTS = {"a": "10.99.0.2", "b": "10.99.0.3", "c": "10.99.0.9"}
FAULTS = ("SIGKILL", "SIGSTOP", "SIGTERM")
BIN = 0.5  # seconds: answers from both hosts within one bin count as both answering

# The stand-in agent: serve the gateway with a lease, renew it every lease/4 s, and once it
# finds its lease lapsed (it was paused past it) stop, as the agent fences before it
# heartbeats again. Argument: "serve" (A from the start, B when it takes over).
AGENT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from core.linux import lease, netlink
ifname, address, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
link = netlink.Netlink()
index = link.indexes([ifname])[ifname]
current = lease.Lease.from_heartbeat(lease.clock(), seconds)
link.run([netlink.new_addr(index, address, 24, lifetime=current.lifetime())])
print("serving", flush=True)
while True:
    time.sleep(seconds / 4)
    if current.lapsed():
        link.run([netlink.del_addr(index, address, 24)])
        print("fenced", flush=True)
        break
    sent = lease.clock()  # the heartbeat the database takes would be sent here
    current = lease.Lease.from_heartbeat(sent, seconds)
    link.run([netlink.set_addr_lifetime(index, address, 24, current.lifetime())])
while True:
    time.sleep(3600)
"""

PROBER = r"""
import json, socket, struct, sys, time
ifname, own_ip, target, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((ifname, 0)); s.settimeout(0.02)
mac = s.getsockname()[4]
request = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(own_ip),
                      bytes(6), socket.inet_aton(target))
frame = b"\xff" * 6 + mac + b"\x08\x06" + request
start = time.monotonic(); sent = 0.0; seen = []
print("ready", flush=True)
while time.monotonic() - start < seconds:
    if time.monotonic() - sent >= 0.1:
        s.send(frame); sent = time.monotonic()
    try:
        reply = s.recv(128)
    except socket.timeout:
        continue
    if reply[21] == 2 and reply[28:32] == socket.inet_aton(target):
        seen.append([round(time.monotonic() - start, 3), reply[22:28].hex(":")])
print(json.dumps(seen), flush=True)
"""

KEEPALIVED = """global_defs {{
    router_id {name}
}}
vrrp_instance gateway {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {gateway}/24
    }}
}}
"""


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def in_ns(ns: str, *argv: str) -> str:
    return run("ip", "netns", "exec", ns, *argv)


class Lab:
    def __init__(self) -> None:
        tag = secrets.token_hex(2)
        self.ns = {name: f"ncf-{name}-{tag}" for name in ("s", *HOSTS)}
        self.dir = Path(tempfile.mkdtemp(prefix="ncf-"))
        self.processes: list[subprocess.Popen[str]] = []
        for ns in self.ns.values():
            run("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        switch = self.ns["s"]
        in_ns(switch, "ip", "link", "add", "sw0", "type", "bridge")
        in_ns(switch, "ip", "link", "set", "sw0", "up")
        for name, address in HOSTS.items():
            run(
                "ip", "link", "add", "eth0", "netns", self.ns[name], "type", "veth",
                "peer", "name", f"p{name}", "netns", switch,
            )  # fmt: skip
            in_ns(switch, "ip", "link", "set", f"p{name}", "master", "sw0", "up")
            in_ns(self.ns[name], "ip", "link", "set", "eth0", "up")
            in_ns(self.ns[name], "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        self.macs = {
            name: in_ns(self.ns[name], "cat", "/sys/class/net/eth0/address").strip()
            for name in ("a", "b")
        }

    def start(self, name: str, argv: list[str], *, session: bool = False) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[name], *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=session,
        )
        self.processes.append(process)
        return process

    def holds(self, name: str) -> bool:
        return GATEWAY in in_ns(self.ns[name], "ip", "-4", "addr", "show", "dev", "eth0")

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
        for name in ("a", "b", "c"):
            subprocess.run(["ip", "-n", self.ns[name], "link", "del", "eth0"], check=False)
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit("the lab did not come up in time")


def lease_case(lab: Lab, fault: str, seconds: float, window: float) -> dict[str, object]:
    agent = [PYTHON, "-c", AGENT, str(ROOT), "eth0", GATEWAY, str(seconds)]
    first = lab.start("a", agent, session=True)
    wait_for(lambda: lab.holds("a"))
    return measure(
        lab,
        fault,
        window,
        [first],
        takeover=lambda: lab.start("b", agent),
        after=seconds,
        pause=seconds,
    )


def vrrp_case(lab: Lab, fault: str, window: float, pause: float) -> dict[str, object]:
    daemons = []
    for name, state, priority in (("a", "MASTER", 150), ("b", "BACKUP", 100)):
        config = lab.dir / f"keepalived-{name}.conf"
        config.write_text(
            KEEPALIVED.format(name=name, state=state, priority=priority, gateway=GATEWAY)
        )
        argv = [
            "keepalived", "--dont-fork", "--vrrp", "--no-syslog", f"--use-file={config}",
            f"--pid={lab.dir}/k-{name}.pid", f"--vrrp_pid={lab.dir}/kv-{name}.pid",
        ]  # fmt: skip
        daemons.append(lab.start(name, argv, session=True))
    wait_for(lambda: lab.holds("a"))
    return measure(lab, fault, window, [daemons[0]], takeover=None, after=0.0, pause=pause)


def measure(
    lab: Lab,
    fault: str,
    window: float,
    struck: list[subprocess.Popen[str]],
    *,
    takeover: Callable[[], object] | None,
    after: float,
    pause: float,
) -> dict[str, object]:
    """Strike A one second into the window; B takes over ``after`` seconds later (netcon:
    an evacuation, once A's lease can have lapsed) or by itself (VRRP). A paused A is
    resumed ``pause`` + 4 s after the strike, the same for both mechanisms."""
    prober = lab.start("c", [PYTHON, "-c", PROBER, "eth0", HOSTS["c"], GATEWAY, str(window)])
    assert prober.stdout is not None and prober.stdout.readline().strip() == "ready"
    begun = time.monotonic()
    time.sleep(1.0)
    strike = time.monotonic() - begun
    for process in struck:
        # The whole group: keepalived runs its VRRP work in a child process.
        group = os.getpgid(process.pid)
        if fault == "SIGTERM":
            process.send_signal(signal.SIGTERM)  # the unit stops its main process
        else:
            os.killpg(group, getattr(signal, fault))
    if takeover is not None:
        time.sleep(after + 0.5)
        takeover()
    resumed = None
    if fault == "SIGSTOP":
        # Resumed once B has served a while, as a host that was paused comes back.
        time.sleep(max(0.0, strike + pause + 4.0 - (time.monotonic() - begun)))
        resumed = time.monotonic() - begun
        for process in struck:
            os.killpg(os.getpgid(process.pid), signal.SIGCONT)
    out, _ = prober.communicate(timeout=window + 30)
    seen = json.loads(out.strip().splitlines()[-1])
    old, new = lab.macs["a"], lab.macs["b"]
    after_strike = [t for t, mac in seen if mac == old and t > strike]
    bins: dict[int, set[str]] = {}
    for t, mac in seen:
        if t > strike:
            bins.setdefault(int(t / BIN), set()).add(mac)
    last_old = max(after_strike) if after_strike else None
    return {
        "fault": fault,
        "old_last": None if last_old is None else round(last_old - strike, 1),
        "old_still": bool(after_strike) and max(after_strike) > window - 1.0,
        "both": round(sum(BIN for macs in bins.values() if {old, new} <= macs), 1),
        "again": None if resumed is None else any(t > resumed + 0.2 for t in after_strike),
    }


def show(mechanism: str, result: dict[str, object]) -> None:
    if result["old_still"]:
        last = "still answering"
    elif result["old_last"] is None:
        last = "at once"
    else:
        last = f"{result['old_last']} s"
    again = {None: "-", True: "yes", False: "no"}[result["again"]]  # type: ignore[index]
    print(f"{mechanism:<16} {result['fault']:<8} {last:>16} {result['both']:>8} s {again:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lease", type=float, default=3.0, help="seconds (host_down_time)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it makes network namespaces")
    if subprocess.run(["sh", "-c", "command -v keepalived"], capture_output=True).returncode:
        raise SystemExit("needs keepalived (Debian: apt-get install keepalived)")
    window = args.lease * 2 + 10.0
    print(f"lease {args.lease:g} s, VRRP advert 1 s; a window of {window:g} s per case")
    print(f"{'':<16} {'fault':<8} {'A last answered':>16} {'both':>10} {'A again':>8}")
    for fault in FAULTS:
        for mechanism in ("netcon lease", "keepalived VRRP"):
            lab = Lab()
            try:
                if mechanism == "netcon lease":
                    result = lease_case(lab, fault, args.lease, window)
                else:
                    result = vrrp_case(lab, fault, window, args.lease)
            finally:
                lab.close()
            show(mechanism, result)


if __name__ == "__main__":
    main()
