"""Which broker carries netcon's wake-ups: NATS or RabbitMQ, measured in one run with
the shape netcon gives them (a subscription per host, a message to one named host).

    python bench/bench_brokers.py [--hosts 1000] [--messages 500]

Needs nats-server and rabbitmq-server (Debian packages) and, for RabbitMQ's client,
pika (pip install pika). Each server is started for the run on free ports of
127.0.0.1 in a directory of its own (RabbitMQ with its own Erlang port mapper), and
stopped by its PID at the end.

For each broker: ``--hosts`` subscribers, each its own connection, as each host's agent
holds (NATS: a subscription to netcon.host.<name>; RabbitMQ: an exclusive queue bound
to a direct exchange with the host's name as key, as OpenStack's agents bind theirs),
spread over processes of 50; then, from one publisher,
``--messages`` wake-ups to one host whose subscriber is timed from publish to
delivery, and the server's resident memory and CPU time while the subscribers idle.
The baseline of each figure is the other broker's, in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
PER_PROCESS = 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


# -- subscribers, run as processes of their own ----------------------------------------


def subscribe_main(kind: str, url: str, names: list[str]) -> int:
    """Hold one connection and subscription per name until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    held: list[object] = []
    if kind == "nats":
        import asyncio

        import nats

        async def hold() -> None:
            for name in names:
                client = await nats.connect(url, name=f"bench {name}")
                await client.subscribe(f"netcon.host.{name}", cb=_ignore)
                await client.flush()
                held.append(client)
            print("ready", flush=True)
            while not stop.is_set():
                await asyncio.sleep(0.2)

        asyncio.run(hold())
    else:
        import pika

        for name in names:
            connection = pika.BlockingConnection(pika.URLParameters(url + "?heartbeat=0"))
            channel = connection.channel()
            queue = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(queue, "netcon", routing_key=name)
            held.append(connection)
        print("ready", flush=True)
        stop.wait()
    return 0


async def _ignore(_message: object) -> None:
    return


# -- the servers -------------------------------------------------------------------------


@contextlib.contextmanager
def nats_server(root: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        ["nats-server", "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"nats://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def rabbitmq_server(root: Path) -> Iterator[tuple[str, int]]:
    port, dist, epmd = free_port(), free_port(), free_port()
    home = root / "rabbitmq"
    home.mkdir()
    (home / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"
    )
    (home / "enabled_plugins").write_text("[].\n")
    env = dict(
        os.environ,
        HOME=str(home),
        RABBITMQ_NODENAME=f"ncbench{port}@localhost",
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(dist),
        ERL_EPMD_PORT=str(epmd),
        ERL_EPMD_ADDRESS="127.0.0.1",
        RABBITMQ_MNESIA_BASE=str(home / "mnesia"),
        RABBITMQ_LOG_BASE=str(home / "log"),
        RABBITMQ_CONFIG_FILE=str(home / "rabbitmq"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(home / "enabled_plugins"),
    )
    started = time.monotonic()
    process = subprocess.Popen(
        ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port(port, 180)
        import pika

        url = f"amqp://guest:guest@127.0.0.1:{port}/"
        while True:
            try:
                connection = pika.BlockingConnection(pika.URLParameters(url))
                break
            except pika.exceptions.AMQPError:
                if time.monotonic() - started > 180:
                    raise
                time.sleep(0.5)
        connection.channel().exchange_declare("netcon", "direct")
        connection.close()
        print(f"  RabbitMQ answered {time.monotonic() - started:.1f} s after its start")
        yield url, beam_pid(process.pid)
    finally:
        # The server and the Erlang port mapper it started: its session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
        for pid in epmd_pids(epmd):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def beam_pid(parent: int) -> int:
    """The Erlang VM under RabbitMQ's start script (whose memory is the broker's)."""
    found = parent
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (
                os.getsid(int(entry.name)) == os.getsid(parent)
                and "beam" in (entry / "comm").read_text()
            ):
                found = int(entry.name)
    return found


def epmd_pids(port: int) -> list[int]:
    """The Erlang port mappers started for this run: told their port in the environment."""
    wanted = f"ERL_EPMD_PORT={port}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "epmd" and wanted in (
                    entry / "environ"
                ).read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
    return pids


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing answered on port {port}")


# -- the measurement ---------------------------------------------------------------------


def measure(kind: str, url: str, pid: int, hosts: int, messages: int) -> dict[str, float]:
    names = [f"h{number:04d}" for number in range(hosts)]
    before = rss_mb(pid)
    processes = []
    for first in range(1, hosts, PER_PROCESS):
        batch = names[first : first + PER_PROCESS]
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "subscribe", kind, url, ",".join(batch)],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise SystemExit(f"a {kind} subscriber did not start")
        time.sleep(2)
        held = rss_mb(pid)
        cpu = cpu_seconds(pid)
        time.sleep(10)
        idle_cpu = (cpu_seconds(pid) - cpu) / 10 * 100
        latencies = timed_wake_ups(kind, url, names[0], messages)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
    return {
        "memory_mb": held,
        "per_host_kb": (held - before) * 1024 / max(hosts - 1, 1),
        "idle_cpu": idle_cpu,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000,
    }


def timed_wake_ups(kind: str, url: str, host: str, messages: int) -> list[float]:
    """Publish ``messages`` wake-ups to ``host`` one at a time; seconds from each publish
    to its delivery to the host's own subscriber."""
    arrived: list[float] = []
    got = threading.Event()
    latencies: list[float] = []
    if kind == "nats":
        import asyncio

        import nats

        async def run() -> None:
            async def delivered(_message: object) -> None:
                arrived.append(time.perf_counter())

            listener = await nats.connect(url)
            await listener.subscribe(f"netcon.host.{host}", cb=delivered)
            await listener.flush()
            from core.bus import Publisher

            publisher = Publisher(url)
            for number in range(messages):
                sent = time.perf_counter()
                publisher.publish([host], {"change": number})
                while len(arrived) <= number:
                    await asyncio.sleep(0)
                latencies.append(arrived[number] - sent)
            publisher.close()
            await listener.close()

        asyncio.run(run())
        return latencies
    import pika

    def listen(ready: threading.Event) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "netcon", routing_key=host)

        def delivered(*_: object) -> None:
            arrived.append(time.perf_counter())
            got.set()
            if len(arrived) >= messages:
                channel.stop_consuming()

        channel.basic_consume(queue, delivered, auto_ack=True)
        ready.set()
        channel.start_consuming()
        connection.close()

    ready = threading.Event()
    thread = threading.Thread(target=listen, args=(ready,))
    thread.start()
    ready.wait(60)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for number in range(messages):
        got.clear()
        sent = time.perf_counter()
        channel.basic_publish("netcon", host, b'{"change": %d}' % number)
        got.wait(10)
        latencies.append(arrived[number] - sent)
    connection.close()
    thread.join(30)
    return latencies


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "subscribe":
        return subscribe_main(sys.argv[2], sys.argv[3], sys.argv[4].split(","))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    for program in ("nats-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"):
        if shutil.which(program) is None:
            print(f"{program} is missing (Debian: nats-server, rabbitmq-server)", file=sys.stderr)
            return 2
    print(f"bench_brokers: {args.hosts} subscribers, {args.messages} wake-ups, {load()}")
    root = Path(tempfile.mkdtemp(prefix="nc-bbroker-"))
    found: dict[str, dict[str, float]] = {}
    try:
        for kind, server in (("nats", nats_server), ("rabbitmq", rabbitmq_server)):
            with server(root) as (url, pid):
                found[kind] = measure(kind, url, pid, args.hosts, args.messages)
            print(f"  {kind:<9} {found[kind]}  ({load()})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    nats, rabbit = found["nats"], found["rabbitmq"]
    print(f"\n  {'':<34}{'NATS':>10}{'RabbitMQ':>10}{'RabbitMQ / NATS':>17}")
    for key, label in (
        ("memory_mb", "server memory, MB"),
        ("per_host_kb", "memory per subscribed host, KB"),
        ("idle_cpu", "server CPU while idle, % of a core"),
        ("median_ms", "publish to delivery, median ms"),
        ("p99_ms", "publish to delivery, p99 ms"),
    ):
        ratio = rabbit[key] / nats[key] if nats[key] else float("inf")
        print(f"  {label:<34}{nats[key]:10.2f}{rabbit[key]:10.2f}{ratio:16.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
