"""`python -m core.metadata --listen ADDRESS:PORT [--netns NAME]`: the metadata server of
one network host, started, watched and stopped by `host apply` (core.linux.metadata). The database
comes from NETCON_DATABASE_URL; the settings that shape the answers come as options, so
a change of them changes the command line and the next apply restarts the server.

It listens (and writes its pid file, which the apply waits for) as soon as it has seen
the database answer, before it imports its web framework and SQLAlchemy: those take
longer than the rest of a first apply, and a guest's request waits in the listening
socket's queue meanwhile instead of being refused."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from core.config import load_settings
from core.errors import NetconError
from core.linux import namespace
from core.paths import database_url

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web


def main(argv: list[str] | None = None) -> int:
    # Its start-up makes objects that live as long as it does: no cycle collection over
    # them while it starts (as a command, see core.cli.collector), and none after.
    gc.disable()
    parser = argparse.ArgumentParser(prog="python -m core.metadata")
    parser.add_argument("--listen", default="0.0.0.0:8775", metavar="ADDRESS:PORT")
    parser.add_argument("--pid-file", help="written once the server listens")
    parser.add_argument("--dhcp-domain", help="the domain of instance hostnames")
    parser.add_argument("--physical-mtu", type=int, help="the MTU networks derive theirs from")
    parser.add_argument("--netns", help="the network namespace to listen in")
    parser.add_argument("--listen-v6", metavar="[ADDRESS]:PORT", help="listen on IPv6 too")
    args = parser.parse_args(argv)
    address, _, port = args.listen.rpartition(":")
    settings = load_settings()
    if args.dhcp_domain:
        settings = settings.replace(dhcp_domain=args.dhcp_domain)
    if args.physical_mtu:
        settings = settings.replace(physical_mtu=args.physical_mtu)
    url = database_url()
    try:
        _check_database(url)
    except NetconError as exc:
        print(f"metadata server: {exc}", file=sys.stderr)
        return 1

    # The socket is made in the namespace the guests' DNAT leads to; the process stays
    # where it was started, so it reaches the database as the host layer does.
    with namespace.entered(args.netns):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address or "0.0.0.0", int(port)))
    listener.listen(1024)
    listeners = [listener]
    if args.listen_v6:
        listeners.append(_ipv6_listener(args.netns, args.listen_v6))
    # The namespace it serves, as it was when the socket was made there.
    home = namespace.identity(args.netns) if args.netns else None
    if args.pid_file:
        _write_pid(args.pid_file)

    from core.metadata.app import make_app
    from core.service import NetconService
    from core.views import MetadataView

    service = NetconService(url, settings, create=False)

    def lookup(source: str, local: str) -> MetadataView | None:
        if ":" in source:  # over IPv6, DNATed from fe80::a9fe:a9fe to the /64's gateway
            return service.instance_metadata_v6(source, via=local)
        return service.instance_metadata(source, via=local)

    gc.freeze()
    gc.enable()
    # Imported once it listens, as the rest is: the apply that started it waits until then.
    import asyncio

    asyncio.run(serve(make_app(lookup), listeners, args.netns, home))
    return 0


def _ipv6_listener(netns: str | None, listen: str) -> socket.socket:
    """An IPv6 socket ("[::]:8775"), IPv6 only: IPv4 stays on its own socket, whose
    peers are plain IPv4 addresses."""
    address, _, port = listen.rpartition(":")
    with namespace.entered(netns):
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address.strip("[]") or "::", int(port)))
    listener.listen(1024)
    return listener


def _check_database(url: str) -> None:
    """What can stop the server once it listens, seen before it does: the database
    answers, and is netcon's (a server that listened and then died would pass the
    apply that started it)."""
    from core.store.raw import RawDatabase

    database = RawDatabase(url, read_only=True)
    try:
        database.query("SELECT 1 FROM instances WHERE 1 = 0")
    except Exception as exc:  # noqa: BLE001 - the driver's own error, whichever it is
        raise NetconError(f"database {url}: {exc}") from None
    finally:
        database.close()


def _write_pid(pid_file: str) -> None:
    # Written once the port is ours: the host layer waits for this.
    temporary = f"{pid_file}.tmp"
    with open(temporary, "w") as file:
        file.write(f"{os.getpid()}\n")
    os.replace(temporary, pid_file)


async def serve(
    app: web.Application,
    listeners: list[socket.socket],
    netns: str | None = None,
    home: tuple[int, int] | None = None,
) -> None:
    import asyncio

    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for listener in listeners:
        await web.SockSite(runner, listener).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch = asyncio.create_task(_outlive_not(netns, home, stop)) if netns else None
    await stop.wait()
    if watch is not None:
        watch.cancel()
    await runner.cleanup()


async def _outlive_not(netns: str, home: tuple[int, int] | None, stop: asyncio.Event) -> None:
    """The server runs outside the namespace it listens in, so nothing ends it with the
    namespace: once the namespace is deleted (or another made under its name), stop."""
    import asyncio

    while not stop.is_set():
        await asyncio.sleep(2.0)
        if namespace.identity(netns) != home:
            stop.set()


if __name__ == "__main__":
    sys.exit(main())
