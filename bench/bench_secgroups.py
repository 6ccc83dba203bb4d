"""Speed of security groups on the host, as ratios to baselines measured in the same run.

    python bench/bench_secgroups.py [--instances 1000] [--groups 50] [--rules 10]
                                    [--changes 100] [--repeat 5] [--grow-to 10000]
                                    [--agent-changes 30] [--only first,changes,...]
                                    [--strict]

Needs root, nft, iptables (iptables-save/-restore, both backends), ab (apache2-utils)
and, for the agents' figure, PostgreSQL 15. Everything runs in one fresh network
namespace (``nc-bsg-<random>``) holding a network host with one VLAN network of
``--instances`` instances, each in one of ``--groups`` groups of ``--rules`` rules (7
CIDR rules, 1 ICMP rule, 2 source-group rules); it is emptied and deleted at the end.

Applies are timed two ways. *In the applying process* is what a long-running process
pays once it has committed a change: the console's and the agent's auto-apply (reading
the desired state, observing the host, planning, and the nft batch it runs). *As a
command* is a whole ``netcon`` process, as a script would run it (interpreter start-up
and imports included).

1. First apply of the filter (both tables absent, everything else in place) against
   ``nft -f`` loading the same ruleset, saved from the host as one file; as a command,
   against that plus ``python3 -c "import sqlalchemy"``.
2. ``--changes`` successive single changes (a rule added to a group, an instance
   joining one more group, an instance terminated, in turn), each applied at its own
   keys as auto-apply applies a committed change, against nova-network's method: after
   each change ``iptables-save`` and ``iptables-restore`` of the whole filter table,
   with one chain per instance and source-group rules expanded to one rule per member
   (the rulesets are generated beforehand and not timed). Both iptables backends are
   run; each kind is judged against the faster one.
3. ``netcon secgroup rule add`` as a command with ``auto_apply`` on, against the same
   command without it: what the apply adds.
4. One instance joining a group of 1,000 members plus one rule added to it, against the
   same change for a group of 10 members.
5. TCP connection rate through an instance port (``ab`` against a small server in the
   instance's namespace, from another instance) with the whole ruleset loaded, against
   the same with the security-group tables deleted.
6. The host grown to ``--grow-to`` ports: the kinds of change of 2 timed again, each
   against its cost before.
7. A rule change through ``netcon agent``: three hosts on one PostgreSQL (set up as
   bench_agents.py does), from the commit's return to the first TCP connection a guest
   gets accepted through the new rule.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import load_settings  # noqa: E402
from core.linux import processes  # noqa: E402
from core.linux.metadata.spec import PROGRAMS as METADATA_PROGRAMS  # noqa: E402
from core.linux.namespace import entered  # noqa: E402
from core.linux.ports import port_name  # noqa: E402
from core.linux.scope import Scope  # noqa: E402
from core.linux.secgroups import tables as filter_tables  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.service.hostsync import HostSync  # noqa: E402

RESULTS: list[tuple[str, bool]] = []
NETCON = Path(sys.executable).parent / "netcon"
# Room for the 10,000-port figure.
NETWORK = "10.128.0.0/18"

SERVER = r"""
import selectors, socket, sys
reply = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], 8080)); listener.listen(1024); listener.setblocking(False)
selector = selectors.EpollSelector(); selector.register(listener, selectors.EVENT_READ)
while True:
    for key, _ in selector.select():
        if key.fileobj is listener:
            try:
                while True:
                    conn, _ = listener.accept(); conn.setblocking(False)
                    selector.register(conn, selectors.EVENT_READ)
            except BlockingIOError:
                pass
        else:
            conn = key.fileobj
            try:
                if conn.recv(4096):
                    conn.send(reply)
            except OSError:
                pass
            selector.unregister(conn); conn.close()
"""


def run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(list(argv), input=stdin, text=True, capture_output=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}: {result.stderr.strip()[:300]}")
    return result.stdout


def inside(ns: str, *argv: str, stdin: str | None = None, check: bool = True) -> str:
    return run("nsenter", f"--net=/run/netns/{ns}", *argv, stdin=stdin, check=check)


def report(label: str, value: float, target: str, ok: bool) -> None:
    RESULTS.append((label, ok))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"  {label:<62} {value:8.3f}   target {target:<8} {'PASS' if ok else 'FAIL'}"
        f"   (load {load})"
    )


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


@contextmanager
def namespace() -> Iterator[str]:
    name = f"nc-bsg-{secrets.token_hex(2)}"
    run("ip", "netns", "add", name)
    try:
        for command in (
            "link add und0 type veth peer name und1",
            "link set und0 up",
            "link set und1 up",
            "link set lo up",
            "addr add 192.168.90.1/24 dev und0",
        ):
            run("ip", "-n", name, *command.split())
        yield name
    finally:
        for pid in run("ip", "netns", "pids", name, check=False).split():
            with suppress(ProcessLookupError):
                os.kill(int(pid), 15)
        # The metadata server runs outside the namespace (it only listens there).
        for program in sorted(METADATA_PROGRAMS):
            for found in processes.find(program, name, None):
                with suppress(ProcessLookupError):
                    os.kill(found.pid, 15)
        links = run("ip", "-n", name, "-o", "link", "show", check=False).splitlines()
        names = [line.split(":")[1].strip().split("@")[0] for line in links]
        batch = "".join(f"link del {n}\n" for n in names if n != "lo")
        run("ip", "-n", name, "-force", "-batch", "-", stdin=batch, check=False)
        run("ip", "netns", "del", name, check=False)


class Cloud:
    """The benchmark's database and network host."""

    def __init__(self, ns: str, state: Path, instances: int, groups: int, rules: int) -> None:
        self.ns = ns
        self.state = state
        self.db = state / "netcon.db"
        self.config = state / "config"
        values = {
            "host": "bench",
            "state_dir": str(state / "host"),
            "netns": ns,
            "public_interface": "und1",
            "vlan_interface": "und0",
            "segmentation": "vxlan",
            "quota_security_groups": -1,
            "quota_security_group_rules": -1,
        }
        self.auto_config = state / "config-auto"
        text = "".join(
            f"{k} = {v}\n" if isinstance(v, int) else f'{k} = "{v}"\n' for k, v in values.items()
        )
        for config, extra in ((self.config, ""), (self.auto_config, "auto_apply = true\n")):
            (config / "netcon").mkdir(parents=True)
            (config / "netcon" / "netcon.toml").write_text(text + extra)
        self.service = NetconService(
            f"sqlite:///{self.db}", load_settings(paths=[], **values), actor="bench"
        )
        self.layer = HostSync(self.service)
        self.groups = [f"g{k:02d}" for k in range(groups)]
        self.instances = [f"vm{i:04d}" for i in range(instances)]
        self._build(rules)

    def _build(self, rules: int) -> None:
        s = self.service
        s.create_networks(NETWORK, 1, 16384)
        s.create_project("bench")
        count = len(self.groups)
        with s.deferred_changes():
            for name in self.groups:
                s.create_security_group("bench", name)
            for k, name in enumerate(self.groups):
                cidr_rules = max(rules - 3, 0)
                for j in range(cidr_rules):
                    s.add_security_group_rule(
                        "bench", name, "tcp", 1000 + k * 10 + j, None, cidr=f"10.{j}.0.0/16"
                    )
                if rules >= 3:
                    s.add_security_group_rule("bench", name, "icmp", 8, -1)
                    s.add_security_group_rule(
                        "bench", name, "tcp", 5000, None, source_group=self.groups[(k + 1) % count]
                    )
                    s.add_security_group_rule(
                        "bench", name, "udp", 6000, None, source_group=self.groups[(k + 2) % count]
                    )
            for i, name in enumerate(self.instances):
                s.launch_instance("bench", name, [self.groups[i % count]])

    def env(self, auto_apply: bool = False) -> dict[str, str]:
        return {
            **os.environ,
            "NETCON_DATABASE_URL": f"sqlite:///{self.db}",
            "XDG_CONFIG_HOME": str(self.auto_config if auto_apply else self.config),
        }

    def command(self, *argv: str, auto_apply: bool = False) -> None:
        result = subprocess.run(
            [str(NETCON), *argv], env=self.env(auto_apply), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"netcon {' '.join(argv[:3])}: {result.stderr.strip()[:300]}")

    def command_apply(self) -> None:
        result = subprocess.run(
            [str(NETCON), "host", "apply", "--netns", self.ns],
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"netcon host apply: {result.stderr.strip()[:300]}")

    def drop_filter(self) -> None:
        for family, name in filter_tables.TABLES:
            inside(self.ns, "nft", "delete", "table", family, name, check=False)

    def ruleset(self) -> str:
        return "".join(
            inside(self.ns, "nft", "list", "table", family, name)
            for family, name in filter_tables.TABLES
        )


def nova_ruleset(service: NetconService) -> str:
    """The filter table nova-network's IptablesFirewallDriver would restore for this state:
    one chain per instance, jumped to by destination address; a source group's rule
    repeated for every member."""
    groups = {(g.project, g.name): g for g in service.list_security_groups()}
    members: dict[tuple[str, str], list[str]] = {}
    instances = service.list_instances()
    for vm in instances:
        for group in vm.security_groups:
            members.setdefault((vm.project, group), []).extend(a.address for a in vm.addresses)
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [":nova-network-local - [0:0]", ":nova-network-sg-fallback - [0:0]"]
    rules = ["-A FORWARD -j nova-network-local", "-A nova-network-sg-fallback -j DROP"]
    for vm in instances:
        chain = f"nova-network-inst-{vm.id}"
        lines.append(f":{chain} - [0:0]")
        for a in vm.addresses:
            rules.append(f"-A nova-network-local -d {a.address}/32 -j {chain}")
        rules += [
            f"-A {chain} -m state --state INVALID -j DROP",
            f"-A {chain} -m state --state ESTABLISHED,RELATED -j ACCEPT",
            f"-A {chain} -s 10.128.0.1/32 -p udp -m udp --sport 67 --dport 68 -j ACCEPT",
        ]
        for name in vm.security_groups:
            for r in groups[(vm.project, name)].rules:
                if r.protocol == "icmp":
                    match = "-p icmp -m icmp --icmp-type " + (
                        "any" if r.from_port < 0 else str(r.from_port)
                    )
                elif r.protocol == "any":
                    match = ""
                else:
                    ports = (
                        str(r.from_port)
                        if r.from_port == r.to_port
                        else f"{r.from_port}:{r.to_port}"
                    )
                    match = f"-p {r.protocol} -m {r.protocol} --dport {ports}"
                sources = [r.cidr] if r.cidr else members.get((vm.project, r.source_group), [])
                rules += [f"-A {chain} -s {source} {match} -j ACCEPT" for source in sources]
        rules.append(f"-A {chain} -j nova-network-sg-fallback")
    return "\n".join(lines + rules + ["COMMIT", ""])


def bench_first_apply(cloud: Cloud, repeat: int) -> None:
    cloud.layer.sync()
    ruleset = cloud.ruleset()
    elements = sum(1 for line in ruleset.splitlines() if "." in line or "," in line)
    in_process, command, nft_file, nothing, imports = [], [], [], [], []
    for _ in range(repeat):
        cloud.drop_filter()
        in_process.append(timed(cloud.layer.sync))
        cloud.drop_filter()
        command.append(timed(cloud.command_apply))
        cloud.drop_filter()
        nft_file.append(timed(lambda: inside(cloud.ns, "nft", "-f", "-", stdin=ruleset)))
        assert cloud.layer.plan().operations == ()
        nothing.append(timed(cloud.command_apply))
        imports.append(timed(lambda: run(sys.executable, "-c", "import sqlalchemy")))
    ours, whole, base, idle, interpreter = (
        statistics.median(t) for t in (in_process, command, nft_file, nothing, imports)
    )
    print(
        f"\nfirst apply of the filter: {len(cloud.instances)} instances, {len(cloud.groups)} "
        f"groups, {len(ruleset.splitlines())} lines of ruleset (~{elements} element lines), "
        f"median of {repeat}:"
    )
    print(f"  in the applying process (read, observe, plan, one nft batch)   {ours:.3f} s")
    print(f"  as a command: netcon host apply --netns                        {whole:.3f} s")
    print(f"  nft -f of the same ruleset as one file                          {base:.3f} s")
    print(f"  python3 -c 'import sqlalchemy'                                  {interpreter:.3f} s")
    print(f"  (netcon host apply with nothing to change                       {idle:.3f} s)")
    # Each run's ratio against the baseline timed beside it: how close to the line the
    # worst one came.
    each = [ours_run / base_run for ours_run, base_run in zip(in_process, nft_file, strict=True)]
    each_command = [
        whole_run / (base_run + interpreter_run)
        for whole_run, base_run, interpreter_run in zip(command, nft_file, imports, strict=True)
    ]
    print(
        f"  run by run: in process {min(each):.2f}-{max(each):.2f}x, "
        f"as a command {min(each_command):.2f}-{max(each_command):.2f}x"
    )
    report(
        "in the applying process / nft -f  (x its time)", ours / base, "<= 1.5", ours / base <= 1.5
    )
    script = base + interpreter
    report(
        "as a command / (nft -f + import sqlalchemy)  (x its time)",
        whole / script,
        "<= 1.5",
        whole / script <= 1.5,
    )


KINDS = ("rule add", "join", "terminate")
PARTS = ("first", "changes", "auto", "size", "packets", "scale", "agents")


def _spares(service: NetconService, cloud: Cloud, count: int, prefix: str = "spare") -> list[str]:
    """Instances launched for the timed terminations to end."""
    names = [f"{prefix}{k:04d}" for k in range(count)]
    with service.deferred_changes():
        for k, name in enumerate(names):
            service.launch_instance("bench", name, [cloud.groups[k % len(cloud.groups)]])
    return names


def _replay(
    service: NetconService, cloud: Cloud, changes: int, spares: list[str], offset: int = 0
) -> list[tuple[str, Callable[[], object]]]:
    """``changes`` single changes, the three kinds in turn: a rule added to a group, an
    instance joining one more group, an instance terminated."""
    count = len(cloud.groups)
    steps: list[tuple[str, Callable[[], object]]] = []
    for k in range(changes):
        kind = KINDS[k % 3]
        group = cloud.groups[k % count]
        if kind == "rule add":
            port = 20000 + offset + k
            steps.append(
                (
                    kind,
                    lambda group=group, port=port: service.add_security_group_rule(  # type: ignore[misc]
                        "bench", group, "tcp", port, None, cidr="192.0.2.0/24"
                    ),
                )
            )
        elif kind == "join":
            vm = cloud.instances[(offset + k) % len(cloud.instances)]
            other = cloud.groups[(offset + k + count // 2) % count]
            steps.append(
                (kind, lambda vm=vm, other=other: service.add_instance_security_group(vm, other))  # type: ignore[misc]
            )
        else:
            name = spares.pop()
            steps.append((kind, lambda name=name: service.terminate_instance(name)))  # type: ignore[misc]
    return steps


def _apply_each(
    cloud: Cloud, steps: list[tuple[str, Callable[[], object]]]
) -> dict[str, list[float]]:
    """Each change committed, then applied as the agent and auto-apply apply a committed
    change (scoped to it, in the applying process): the apply's time, by kind."""
    s = cloud.service
    found: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for kind, step in steps:
        step()
        scope = Scope.of(s.last_change) if s.last_change is not None else None
        found[kind].append(timed(lambda scope=scope: cloud.layer.sync(scope=scope)))
    return found


def bench_changes(cloud: Cloud, changes: int, repeat: int) -> None:
    s = cloud.service
    spares = _spares(s, cloud, changes // 3 + 1)
    cloud.layer.sync()
    steps = _replay(s, cloud, changes, list(spares))
    # nova-network's rulesets after each change, made beforehand (not timed) on a copy.
    copy = cloud.state / "nova.db"
    # Through SQLite's backup: a plain file copy would open and close the live database
    # file in this process, which drops SQLite's POSIX locks on it.
    source, target = sqlite3.connect(cloud.db), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    shadow = NetconService(f"sqlite:///{copy}", s.settings, actor="bench")
    shadow_steps = _replay(shadow, cloud, changes, list(spares))
    rulesets = []
    for _, step in shadow_steps:
        step()
        rulesets.append(nova_ruleset(shadow))
    rules = rulesets[-1].count("\n-A ")
    ours = _apply_each(cloud, steps)
    left = cloud.layer.plan()
    assert left.operations == (), left.describe()[:5]
    # The two iptables backends: the nf_tables one that `iptables-restore` is here, and
    # the legacy x_tables one of nova-network's day. Each change: save, then restore.
    nova: dict[str, float] = {}
    cloud.drop_filter()
    for backend in ("iptables", "iptables-legacy"):
        start = time.perf_counter()
        for text in rulesets:
            inside(cloud.ns, f"{backend}-save", "-t", "filter")
            inside(cloud.ns, f"{backend}-restore", stdin=text)
        nova[backend] = (time.perf_counter() - start) / len(rulesets)
        inside(cloud.ns, f"{backend}-restore", stdin="*filter\n-F\n-X\nCOMMIT\n")
    cloud.layer.sync()
    fastest = min(nova.values())
    print(
        f"\n{changes} successive single changes ({', '.join(KINDS)} in turn), each applied "
        f"at its own keys in the applying process ({rules} iptables rules at the end):"
    )
    for kind, times in ours.items():
        print(
            f"  netcon, {kind:<10} mean {statistics.mean(times) * 1000:6.1f} ms, "
            f"median {statistics.median(times) * 1000:6.1f} ms ({len(times)} changes)"
        )
    for backend, each in nova.items():
        print(f"  {backend}-save + -restore    {each * 1000:7.1f} ms a change")
    for kind, times in ours.items():
        mean = statistics.mean(times)
        report(
            f"iptables-restore per change / netcon {kind}  (x faster)",
            fastest / mean,
            ">= 20",
            fastest / mean >= 20,
        )


def bench_auto_apply(cloud: Cloud, repeat: int) -> None:
    """`netcon secgroup rule add` as a command, with auto_apply and without."""
    with_apply, without = [], []
    for r in range(repeat):
        for auto in (True, False):
            group = cloud.groups[r % len(cloud.groups)]
            port = str(40000 + 2 * r + (0 if auto else 1))
            argv = ("secgroup", "rule", "add", "--project", "bench", group, "tcp", port)
            took = timed(lambda argv=argv, auto=auto: cloud.command(*argv, auto_apply=auto))
            (with_apply if auto else without).append(took)
        # The change made without auto_apply is still owed: applied, not timed.
        cloud.layer.sync()
    auto, plain = statistics.median(with_apply), statistics.median(without)
    print(f"\none rule added as a command (netcon secgroup rule add), median of {repeat}:")
    print(f"  with auto_apply (the change applied at its keys)   {auto * 1000:7.1f} ms")
    print(f"  without                                            {plain * 1000:7.1f} ms")
    report(
        "the apply's share: with auto_apply / without - 1",
        auto / plain - 1,
        "<= 0.30",
        auto / plain - 1 <= 0.30,
    )


def bench_scale(cloud: Cloud, changes: int, grow_to: int) -> None:
    """The same kinds of change at the host's size, then once it holds ``grow_to`` ports."""
    s = cloud.service
    before = len(s.list_instances())
    spares = _spares(s, cloud, changes // 3 + 1, "early")
    cloud.layer.sync()
    # Other instances than bench_changes' join, other ports than its rules take.
    small = _apply_each(cloud, _replay(s, cloud, changes, spares, offset=300))
    start = time.perf_counter()
    count = len(cloud.groups)
    added = [f"big{i:05d}" for i in range(max(grow_to - before, 0))]
    with s.deferred_changes():
        for i, name in enumerate(added):
            s.launch_instance("bench", name, [cloud.groups[i % count]])
    cloud.layer.sync()
    ports = len(s.list_instances())
    print(f"\n(grown to {ports} instances in {time.perf_counter() - start:.1f} s)")
    spares = _spares(s, cloud, changes // 3 + 1, "late")
    cloud.layer.sync()
    large = _apply_each(cloud, _replay(s, cloud, changes, spares, offset=600))
    assert cloud.layer.plan().operations == ()
    print(f"one change applied at its keys, median of {changes // 3} each:")
    for kind in KINDS:
        a, b = statistics.median(small[kind]), statistics.median(large[kind])
        print(
            f"  {kind:<10} at {before:>6} ports {a * 1000:6.1f} ms, "
            f"at {ports:>6} ports {b * 1000:6.1f} ms"
        )
        report(f"{kind} at {ports} ports / at {before}  (x)", b / a, "<= 1.2", b / a <= 1.2)


def bench_group_size(cloud: Cloud, repeat: int) -> None:
    s = cloud.service
    with s.deferred_changes():
        s.create_security_group("bench", "big")
        s.create_security_group("bench", "small")
        s.create_security_group("bench", "watch")
        s.add_security_group_rule("bench", "watch", "tcp", 7000, None, source_group="big")
        s.add_security_group_rule("bench", "watch", "tcp", 7001, None, source_group="small")
        for i, vm in enumerate(cloud.instances):
            s.add_instance_security_group(vm, "big")
            if i < 10:
                s.add_instance_security_group(vm, "small")
        s.launch_instance("bench", "watcher", ["watch"])
        s.launch_instance("bench", "joiner", [cloud.groups[0]])
    cloud.layer.sync()
    results: dict[str, list[float]] = {"big": [], "small": [], "big-cmd": [], "small-cmd": []}
    for r in range(repeat):
        for group in ("big", "small"):

            def change(group: str = group, r: int = r) -> None:
                s.add_instance_security_group("joiner", group)
                s.add_security_group_rule("bench", group, "udp", 30000 + r, None)

            change()
            results[group].append(timed(cloud.layer.sync))
            s.remove_instance_security_group("joiner", group)
            cloud.layer.sync()
            change(r=r + 1000)
            results[f"{group}-cmd"].append(timed(cloud.command_apply))
            s.remove_instance_security_group("joiner", group)
            cloud.layer.sync()
    big, small = statistics.median(results["big"]), statistics.median(results["small"])
    big_cmd, small_cmd = (
        statistics.median(results["big-cmd"]),
        statistics.median(results["small-cmd"]),
    )
    print(f"\none instance joins a group, one rule is added to it, applied; median of {repeat}:")
    for label, inner, whole in (("1,000", big, big_cmd), ("10", small, small_cmd)):
        print(
            f"  group of {label:>5} members: in the applying process {inner * 1000:7.1f} ms, "
            f"as a command {whole * 1000:7.1f} ms"
        )
    report(
        "1,000 members / 10, in the applying process  (x)",
        big / small,
        "<= 1.2",
        big / small <= 1.2,
    )
    report(
        "1,000 members / 10, as a command  (x)",
        big_cmd / small_cmd,
        "<= 1.2",
        big_cmd / small_cmd <= 1.2,
    )


def _plug(cloud: Cloud, name: str) -> tuple[str, str]:
    """A guest namespace for instance ``name`` on the network's bridge: (namespace, address)."""
    vm = cloud.service.get_instance(name).instance.addresses[0]
    guest = f"{cloud.ns}-{name}"[:40]
    run("ip", "netns", "add", guest)
    tap = port_name(vm.mac)
    run(
        "ip",
        "-n",
        cloud.ns,
        "link",
        "add",
        tap,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        guest,
    )
    run("ip", "-n", guest, "link", "set", "eth0", "address", vm.mac)
    bridge = cloud.service.list_networks()[0].bridge
    run("ip", "-n", cloud.ns, "link", "set", tap, "master", bridge, "up")
    length = NETWORK.split("/")[1]
    for command in (
        "link set lo up",
        "link set eth0 up",
        f"addr add {vm.address}/{length} dev eth0",
    ):
        run("ip", "-n", guest, *command.split())
    return guest, vm.address


def _rate(client: str, address: str, requests: int) -> float:
    out = run(
        "ip",
        "netns",
        "exec",
        client,
        "ab",
        "-q",
        "-n",
        str(requests),
        "-c",
        "8",
        f"http://{address}:8080/",
    )
    match = re.search(r"Requests per second:\s+([\d.]+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    assert match and failed and failed.group(1) == "0", out[-500:]
    return float(match.group(1))


def bench_packets(cloud: Cloud, repeat: int, requests: int) -> None:
    s = cloud.service
    with s.deferred_changes():
        s.create_security_group("bench", "web")
        for j in range(9):
            s.add_security_group_rule("bench", "web", "tcp", 100 + j, None, cidr=f"10.{j}.0.0/16")
        s.add_security_group_rule("bench", "web", "tcp", 8080, None, cidr=NETWORK)
        s.launch_instance("bench", "server", ["web"])
        s.launch_instance("bench", "client", [cloud.groups[0]])
    cloud.layer.sync()
    guests = []
    try:
        server, address = _plug(cloud, "server")
        client, _ = _plug(cloud, "client")
        guests = [server, client]
        process = subprocess.Popen(
            ["ip", "netns", "exec", server, sys.executable, "-c", SERVER, address],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        _rate(client, address, 1000)  # warm-up
        filtered, bare = [], []
        for _ in range(repeat):
            cloud.layer.sync()
            filtered.append(_rate(client, address, requests))
            cloud.drop_filter()
            bare.append(_rate(client, address, requests))
        cloud.layer.sync()
        process.terminate()
        process.wait()
    finally:
        for guest in guests:
            run("ip", "-n", guest, "link", "del", "eth0", check=False)
            run("ip", "netns", "del", guest, check=False)
    with_rules, without = statistics.median(filtered), statistics.median(bare)
    print(
        f"\nTCP connections through an instance port (ab -c 8, {requests} connections), "
        f"median of {repeat}:"
    )
    print(f"  with every rule loaded           {with_rules:9.0f} connections/s")
    print(f"  with the filter tables deleted   {without:9.0f} connections/s")
    report(
        "with rules / without  (x the rate)",
        with_rules / without,
        ">= 0.8",
        with_rules / without >= 0.8,
    )


def _connects(client: str, address: str, port: int, wait: float) -> bool:
    """Whether a TCP connection from namespace ``client`` is accepted within ``wait``."""
    with entered(client):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(wait)
        sock.connect((address, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def bench_agent_rule(count: int) -> None:
    """A rule change from its commit to its enforcement by the agent of its host: three
    hosts with their `netcon agent` on one PostgreSQL (bench_agents.py's set-up), a guest
    on one host's bridge serving TCP and another guest connecting to it. Each time a rule
    letting the client in is added through the service, and the time from the commit's
    return to the first connection accepted is taken (connections are tried every 2 ms);
    the rule is then removed and applied before the next."""
    import psycopg  # noqa: F401  (bench_agents needs it; say so before starting)
    from bench_agents import HOSTS, postgres
    from bench_agents import Cloud as AgentCloud

    root = Path(tempfile.mkdtemp(prefix="nc-bsg-agents-"))
    root.chmod(0o755)
    print(f"\na rule change, commit to enforcement by its agent: 3 hosts, {count} changes")
    latency: list[float] = []
    applied: list[float] = []
    guests: list[str] = []
    try:
        with postgres(None) as server_url, ExitStack() as stack:
            cloud = AgentCloud(stack, root, server_url, "sgagents", poll=None)
            s = cloud.service
            with s.deferred_changes():
                made = s.create_networks("10.64.0.0/16", 3, 256, 100)
                for index, network in enumerate(made):
                    for host in HOSTS:
                        s.heartbeat(host)
                    s.create_project(f"p{index}")
                    s.modify_network(network.cidr, project=f"p{index}", host=HOSTS[index])
                    for number in range(10):
                        s.launch_instance(f"p{index}", f"vm{index}-{number}")
                s.create_security_group("p0", "web")
                s.launch_instance("p0", "server", ["web"])
                s.launch_instance("p0", "client", ["default"])
            cloud.start()
            cloud.wait_applied()
            ns = cloud.ns[HOSTS[0]]
            bridge = next(n.bridge for n in s.list_networks() if n.project == "p0")
            for name in ("server", "client"):
                vm = s.get_instance(name).instance.addresses[0]
                guest = f"{ns}-{name[0]}"
                run("ip", "netns", "add", guest)
                guests.append(guest)
                tap = port_name(vm.mac)
                run("ip", "-n", ns, "link", "add", tap, "type", "veth", "peer", "name", "eth0",
                    "netns", guest)  # fmt: skip
                run("ip", "-n", guest, "link", "set", "eth0", "address", vm.mac)
                run("ip", "-n", ns, "link", "set", tap, "master", bridge, "up")
                for command in ("link set lo up", "link set eth0 up",
                                f"addr add {vm.address}/24 dev eth0"):  # fmt: skip
                    run("ip", "-n", guest, *command.split())
            server_address = s.get_instance("server").instance.addresses[0].address
            process = subprocess.Popen(
                ["ip", "netns", "exec", guests[0], sys.executable, "-c", SERVER, server_address],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(process.wait)
            stack.callback(process.terminate)
            # The agent's re-sync may have found the new ports: all applied, then closed.
            cloud.wait_applied()
            assert not _connects(guests[1], server_address, 8080, 0.5), "open before any rule"
            for _ in range(count):
                time.sleep(random.uniform(0.0, 0.5))
                rule = s.add_security_group_rule("p0", "web", "tcp", 8080, None)
                committed = time.monotonic()
                change = s.last_change
                assert change is not None and change.change is not None
                while not _connects(guests[1], server_address, 8080, 0.002):
                    if time.monotonic() - committed > 30:
                        raise SystemExit("the rule was not enforced within 30 s")
                latency.append(time.monotonic() - committed)
                agent = cloud.agents[HOSTS[0]]
                applied.append(agent.applied_at(change.change) - committed)
                s.remove_security_group_rule(rule.id)
                cloud.wait_applied()
                assert not _connects(guests[1], server_address, 8080, 0.2), "open after removal"
            cloud.stop()
            converged = cloud.converged()
    finally:
        for guest in guests:
            run("ip", "-n", guest, "link", "del", "eth0", check=False)
            run("ip", "netns", "del", guest, check=False)
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"  first connection accepted: median {statistics.median(latency) * 1000:6.1f} ms, "
        f"max {max(latency) * 1000:6.1f} ms"
    )
    print(f"  agent said it applied:     median {statistics.median(applied) * 1000:6.1f} ms")
    print(f"  (afterwards every host's full plan is empty: {converged})")
    median = statistics.median(latency) * 1000
    report("commit to a connection accepted, median (ms)", median, "< 50", median < 50)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument(
        "--agent-changes", type=int, default=30, help="rule changes through agents (0: skip)"
    )
    parser.add_argument(
        "--grow-to", type=int, default=10000, help="ports for the scale figure (0: skip it)"
    )
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"the parts to run, comma-separated (default: all of {','.join(PARTS)})",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if not parts <= set(PARTS):
        print(f"--only: parts are {', '.join(PARTS)}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench_secgroups.py needs root: it creates network namespaces", file=sys.stderr)
        return 2
    for program in ("nft", "iptables-restore", "iptables-legacy-restore", "ab"):
        if shutil.which(program) is None:
            print(f"bench_secgroups.py needs {program} (Debian: nftables iptables apache2-utils)")
            return 2
    # The command is timed as an installed netcon runs: from compiled modules.
    root = Path(__file__).resolve().parent.parent
    for package in ("core", "tui"):
        compileall.compile_dir(root / package, quiet=1)
    state = Path(tempfile.mkdtemp(prefix="nc-bench-sg-"))
    state.chmod(0o755)
    try:
        with namespace() as ns:
            start = time.perf_counter()
            cloud = Cloud(ns, state, args.instances, args.groups, args.rules)
            cloud.command_apply()
            print(
                f"(set-up: {len(cloud.instances)} instances in {time.perf_counter() - start:.1f} s)"
            )
            if "first" in parts:
                bench_first_apply(cloud, args.repeat)
            if "changes" in parts:
                bench_changes(cloud, args.changes, args.repeat)
            if "auto" in parts:
                bench_auto_apply(cloud, args.repeat)
            if "size" in parts:
                bench_group_size(cloud, args.repeat)
            if "packets" in parts:
                bench_packets(cloud, args.repeat, args.requests)
            if args.grow_to and "scale" in parts:
                bench_scale(cloud, args.changes // 2, args.grow_to)
            cloud.layer.close()
        if args.agent_changes and "agents" in parts:
            bench_agent_rule(args.agent_changes)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    failed = [label for label, ok in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
