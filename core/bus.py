"""Wake-ups through a message broker (NATS), for clouds past what PostgreSQL's NOTIFY
carries: every NOTIFY wakes every listening backend and holds a global lock at commit,
so the commit rate falls with each host that listens. On the broker a change is
published after its commit on one subject per host it names (``netcon.host.<name>``),
and only the agents of those hosts receive it.

The database stays the record: the change table says what each host owes, and a
wake-up only says "look now". A wake-up the broker lost is caught by the agent's
polling of the change table while the broker is away, and by its periodic re-sync.

Publishing is done by every command that changes something, so it must cost nothing
at start: it speaks the broker's text protocol (CONNECT, PUB, PING/PONG) over a plain
socket instead of importing the asyncio client (0.2-0.4 s to import). The agent, which
runs for months and must ride out a broker's restarts, subscribes through nats-py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from core.defaults import STOP_WAIT
from core.errors import InvalidInput

log = logging.getLogger("netcon.bus")

SUBJECT_PREFIX = "netcon.host."
DEFAULT_PORT = 4222
# A broker that does not answer within this is taken as away: a command never waits on it.
CONNECT_TIMEOUT = 1.0
# How often an agent's connection to the broker is tried while it waits.
PING_INTERVAL = 10
# After a publish that timed out, a process leaves the broker alone this long, so a
# batch of changes does not pay the connect timeout on each.
RETRY_AFTER = 5.0


def bus_url(field: str, value: object) -> str:
    """A broker URL, ``nats://[user:password@]host[:port]``, or several joined by commas
    (a cluster); returned as given, without spaces."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "must be a nats://host:port URL")
    parts = [part.strip() for part in value.split(",")]
    for part in parts:
        _server(field, part)
    return ",".join(parts)


def _server(field: str, text: str) -> tuple[str, int, str | None, str | None]:
    rule = f"{text[:80]!r} must be a nats://host:port URL"
    try:
        parsed = urlsplit(text)
        port = parsed.port or DEFAULT_PORT
    except ValueError:
        raise InvalidInput(field, rule) from None
    if parsed.scheme != "nats" or not parsed.hostname or parsed.path not in ("", "/"):
        raise InvalidInput(field, rule)
    if parsed.query or parsed.fragment or any(c.isspace() for c in text):
        raise InvalidInput(field, rule)
    user = unquote(parsed.username) if parsed.username else None
    password = unquote(parsed.password) if parsed.password else None
    return parsed.hostname, port, user, password


def servers(url: str) -> list[str]:
    """The broker URLs of a bus setting."""
    return [part for part in url.split(",") if part]


def subject(host: str) -> str:
    """The subject a host's agent listens on. Host names are labels joined by dots,
    which are the broker's own token separators: the subject is matched whole."""
    return SUBJECT_PREFIX + host


class BusError(Exception):
    pass


class Publisher:
    """Publishes wake-ups from any process, on one kept connection; never raises: a
    broker that is away costs one connect timeout, then is left alone for a while, and
    the agents catch up from the change table."""

    def __init__(self, url: str, name: str = "netcon") -> None:
        self.servers = [_server("bus", part) for part in servers(url)]
        self.name = name
        self.socket: socket.socket | None = None
        self.buffer = b""
        self.quiet_until = 0.0
        self.lock = threading.Lock()

    def publish(self, hosts: Iterable[str], payload: dict[str, Any]) -> bool:
        """Publish ``payload`` to each host's subject; True when the broker took them
        (it answered a PING sent after them)."""
        body = json.dumps(payload).encode()
        frames = b"".join(
            b"PUB %s %d\r\n%s\r\n" % (subject(host).encode(), len(body), body)
            for host in sorted(hosts)
        )
        if not frames:
            return True
        with self.lock:
            if time.monotonic() < self.quiet_until:
                return False
            # A kept connection may have been closed by the broker since (a restart):
            # one more try on a new one. A wake-up sent twice costs one empty look.
            for _ in range(2):
                try:
                    if self.socket is None:
                        self._connect()
                    assert self.socket is not None
                    self.socket.sendall(frames + b"PING\r\n")
                    self._until_pong()
                    return True
                except (OSError, BusError) as exc:
                    self._drop()
                    failure = exc
            if isinstance(failure, TimeoutError) or "timed out" in str(failure):
                # A broker that does not answer costs the timeout each time: a batch of
                # changes would pay it on each. One that refuses costs nothing.
                self.quiet_until = time.monotonic() + RETRY_AFTER
            log.warning("message bus unreachable (%s): hosts catch up by polling", failure)
            return False

    def _connect(self) -> None:
        failure: Exception | None = None
        for host, port, user, password in self.servers:
            try:
                connection = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                failure = exc
                continue
            self.socket, self.buffer = connection, b""
            info = self._line()
            if not info.startswith(b"INFO "):
                raise BusError(f"{host}:{port} is not a NATS server")
            options: dict[str, Any] = {
                "verbose": False,
                "pedantic": False,
                "echo": False,
                "name": self.name,
                "lang": "python",
                "version": "netcon",
                "protocol": 1,
            }
            if user is not None:
                options.update(user=user, **({"pass": password} if password else {}))
            connection.sendall(b"CONNECT " + json.dumps(options).encode() + b"\r\n")
            return
        if isinstance(failure, TimeoutError):
            raise failure
        raise BusError(f"no broker answered: {failure}")

    def _line(self) -> bytes:
        assert self.socket is not None
        while b"\r\n" not in self.buffer:
            chunk = self.socket.recv(4096)
            if not chunk:
                raise BusError("the broker closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _until_pong(self) -> None:
        assert self.socket is not None
        while True:
            line = self._line()
            if line == b"PONG":
                return
            if line == b"PING":  # the broker's keep-alive, kept waiting since the last publish
                self.socket.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise BusError(line.decode(errors="replace"))
            # +OK and INFO (a cluster's news) need no answer.

    def _drop(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(OSError):
                self.socket.close()
        self.socket, self.buffer = None, b""

    def close(self) -> None:
        with self.lock:
            self._drop()


class BusWatch:
    """An agent's wake-ups from the broker: its host's subject only. While the broker
    is away, :meth:`wait` returns every ``poll`` seconds, so the agent looks at the
    change table instead; when the broker is back (the subscription is renewed), it
    returns at once, so the agent catches up with what it may have missed."""

    def __init__(
        self,
        url: str,
        host: str,
        poll: float,
        *,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.host = host
        self.poll = poll
        self.on_state = on_state or (lambda line: log.info("%s", line))
        self.woken = threading.Event()
        self.up = False
        self.connected = threading.Event()
        self.client: Any = None
        self.closing = False
        import asyncio  # here: commands import this module for its URL check alone

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name=f"bus {host}", daemon=True
        )
        self.thread.start()
        self._submit(self._subscribe())
        # The first subscription is waited for a moment, so that what the agent reads
        # first is already covered by wake-ups; a broker that is away is not waited for.
        self.connected.wait(CONNECT_TIMEOUT * 2)

    def _submit(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def _subscribe(self) -> None:
        """Connect and subscribe; when the connection is lost, poll (wait returns every
        period) and connect again every period until the broker is back."""
        import asyncio

        import nats

        told = False
        while not self.closing:
            lost = asyncio.Event()

            async def gone(lost: asyncio.Event = lost) -> None:
                lost.set()

            try:
                # Reconnection is done here, not by the library: its own retries would
                # hold the first connect until the broker answers.
                self.client = await nats.connect(
                    servers=servers(self.url),
                    name=f"netcon agent {self.host}",
                    connect_timeout=int(max(CONNECT_TIMEOUT, 1)),
                    allow_reconnect=False,
                    # Each server is tried twice, then the connect fails (with 0 or -1
                    # the library tries for ever).
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0,
                    # A broker gone without a word (its machine died) is noticed after
                    # two unanswered pings, not the library's four minutes.
                    ping_interval=PING_INTERVAL,
                    max_outstanding_pings=2,
                    disconnected_cb=gone,
                    closed_cb=gone,
                    error_cb=self._error,
                )
                await self.client.subscribe(subject(self.host), cb=self._message)
                await self.client.flush(timeout=CONNECT_TIMEOUT * 2)
            except Exception as exc:
                await self._close_client()
                if not told:
                    self.on_state(
                        f"message bus {self.url} unreachable ({_reason(exc)}); looking at "
                        f"the change table every {self.poll:g} s until it is back"
                    )
                    told = True
                self.connected.set()  # not waited for any longer
                await asyncio.sleep(self.poll)
                continue
            self.up, told = True, False
            self.woken.set()  # what was published while away was lost: look now
            self.on_state(f"wake-ups through {self.url} on {subject(self.host)}")
            self.connected.set()
            await lost.wait()
            self.up = False
            await self._close_client()
            if not self.closing:
                self.on_state(
                    f"message bus {self.url} lost; looking at the change table every "
                    f"{self.poll:g} s until it is back"
                )
                told = True

    async def _message(self, _message: Any) -> None:
        self.woken.set()

    async def _error(self, _exc: Exception) -> None:
        # Connection trouble is told when the connection is lost and when it is back.
        return

    async def _close_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        polling = not self.up
        # Polling while the broker is away: every period is a look at the table.
        period = max(min(timeout, self.poll) if polling else timeout, 0.0)
        deadline = time.monotonic() + period
        woke = False
        while True:
            left = max(deadline - time.monotonic(), 0.0)
            # In slices when there is a stop to see.
            woke = self.woken.wait(left if stop is None else min(left, STOP_WAIT))
            if woke or left <= STOP_WAIT or stop is None or stop.is_set():
                break
        self.woken.clear()
        return woke or polling

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            self._submit(self._close_client()).result(CONNECT_TIMEOUT * 2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
