"""The web server of `netcon serve`: aiohttp around textual-serve's pieces.

textual-serve's own Server lets anyone in and starts a console for a websocket from any
origin. This one serves the same page and the same xterm.js client, and the same
packets flow, but every request passes the gate (a token exchanged for a cookie, an
Origin check on the websocket), consoles are counted against --max-sessions, and a
console that ends says how on the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.download_manager import DownloadManager

from core.cli.frontends import ServeOptions
from tui.serve import SERVED_BY, SERVER_PID
from tui.serve.gate import Gate
from tui.serve.session import LIMIT, ConsoleSession

log = logging.getLogger("netcon.serve")

PAGE = Path(__file__).parent / "page"
CLIENT = Path(textual_serve.__file__).parent / "static"
GOING_AWAY = 1001
# How long a console started with its page waits for the page's websocket.
RESERVED_FOR = 30.0
# Inline: a notice is also what a browser without a session sees, and gets nothing else.
NOTICE_STYLE = (
    "body{background:#0c181f;color:#eee;font-family:monospace;display:flex;"
    "align-items:center;justify-content:center;height:100vh;margin:0}"
    ".intro{max-width:640px;padding:24px 32px;background:#12232d;text-align:center}"
    "a.button{padding:12px 28px;background:#1f6f8b;color:#fff;text-decoration:none}"
)
# A terminal larger than this is a mistake, not a screen.
MAX_CELLS = 1000
# The page and everything it loads come from here; nothing may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "font-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _cells(text: str | None, default: int) -> int:
    try:
        value = int(text or default)
    except ValueError:
        return default
    return min(max(value, 1), MAX_CELLS)


class ConsoleServer:
    def __init__(self, options: ServeOptions, port: int) -> None:
        self.options = options
        self.port = port
        self.gate = Gate(options.token, port=port, tls=options.tls is not None)
        self.host_name = socket.gethostname()
        # Each running console and the websocket it draws on.
        self.sessions: dict[ConsoleSession, web.WebSocketResponse] = {}
        self.downloads = DownloadManager()
        # Consoles started for a page that has not opened its websocket yet: its key
        # (in the page's websocket URL), the console, and the browser session it is for.
        self.reserved: dict[str, tuple[ConsoleSession, str]] = {}
        self._serial = 0
        self.stopping = False

    # -- what is printed -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        scheme = "https" if self.options.tls else "http"
        return f"{scheme}://{self.options.url_host}:{self.port}"

    def start_lines(self) -> list[str]:
        if self.options.token_file is not None:
            url = f"{self.base_url}/?token=…  (the token in {self.options.token_file})"
        else:
            url = f"{self.base_url}/?token={self.gate.token}"
        lines = [f"netcon serve: open {url}"]
        if self.options.loopback:
            lines.append(
                f"  from another machine: ssh -L {self.port}:{self.options.url_host}:"
                f"{self.port} {self.host_name}, then open the URL there"
            )
        if self.gate.one_time:
            lines.append("  the URL works once; restart netcon serve for a new one")
        return lines

    # -- the application -----------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/ws", self.console_socket),
                web.get("/ws/{console}", self.console_socket),
                web.get("/download/{key}", self.download),
                web.static("/static", CLIENT, show_index=False),
                web.static("/page", PAGE, show_index=False),
            ]
        )
        return app

    @web.middleware
    async def _guard(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path == "/" and "token" in request.query:
            response = self._exchange(request)
        elif not self.gate.admits(request):
            if request.path != "/favicon.ico":
                self.say(f"refused {request.path} without a session ({request.remote})")
            response = self._page(
                403,
                "Not signed in",
                "This browser has no session with netcon serve. Open the URL that "
                "netcon serve printed when it started (ssh -L to it first from another "
                "machine).",
            )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers.update(SECURITY_HEADERS)
                raise
        if not response.prepared:  # a websocket's or a download's headers are sent
            response.headers.update(SECURITY_HEADERS)
            if request.path.startswith(("/static/", "/page/")):
                response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    def _exchange(self, request: web.Request) -> web.StreamResponse:
        session = self.gate.exchange(request.query.get("token", ""))
        if session is None:
            self.say(f"refused a token from {request.remote}")
            return self._page(
                403,
                "Token refused",
                "This token is wrong, or it was a one-time token that has been used. "
                "Restart netcon serve for a new URL, or keep one with --token-file.",
            )
        self.say(f"signed in a browser from {request.remote}")
        # The token leaves the address bar with the redirect.
        response = web.Response(status=303, headers={"Location": "/"})
        self.gate.give_cookie(response, session)
        return response

    def _page(self, status: int, title: str, text: str, *, again: bool = False) -> web.Response:
        button = '<p><a class="button" href="/">Try again</a></p>' if again else ""
        body = (
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>netcon: {html.escape(title)}</title>"
            f"<style>{NOTICE_STYLE}</style></head>"
            f'<body class="notice"><div class="intro"><h1>{html.escape(title)}</h1>'
            f"<p>{html.escape(text)}</p>{button}</div></body></html>"
        )
        return web.Response(status=status, text=body, content_type="text/html")

    def _full_page(self) -> web.Response:
        count = self.options.max_sessions
        response = self._page(
            503,
            "All browser consoles are in use",
            f"netcon serve on {self.host_name} runs at most {count} browser console"
            f"{'s' if count != 1 else ''} at once (--max-sessions {count}), and all are "
            "open. Close one (its tab) and try again.",
            again=True,
        )
        response.headers["Retry-After"] = "5"
        return response

    @property
    def running(self) -> int:
        return len(self.sessions) + len(self.reserved)

    async def index(self, request: web.Request) -> web.Response:
        browser = request.cookies.get(self.gate.cookie, "")
        if self.running >= self.options.max_sessions and not await self._evict(browser):
            return self._full_page()
        scheme = "wss" if self.options.tls else "ws"
        path = "/ws"
        key = await self._reserve(browser)
        if key is not None:
            path += f"/{key}"
        template = (PAGE / "index.html").read_text()
        page = template.format(
            title=html.escape(f"netcon on {self.host_name}"),
            websocket=html.escape(f"{scheme}://{request.host}{path}", quote=True),
            limit=self.options.max_sessions,
            host=html.escape(self.host_name),
        )
        return web.Response(text=page, content_type="text/html")

    async def download(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        try:
            meta = await self.downloads.get_download_metadata(key)
        except KeyError:
            raise web.HTTPNotFound() from None
        response = web.StreamResponse()
        content_type = meta.mime_type + (f"; charset={meta.encoding}" if meta.encoding else "")
        response.headers["Content-Type"] = content_type
        disposition = "inline" if meta.open_method == "browser" else "attachment"
        response.headers["Content-Disposition"] = (
            f'{disposition}; filename="{meta.file_name.replace(chr(34), "")}"'
        )
        response.headers.update(SECURITY_HEADERS)
        await response.prepare(request)
        async for chunk in self.downloads.download(key):
            await response.write(chunk)
        await response.write_eof()
        return response

    # -- consoles ------------------------------------------------------------------------

    def console_argv(self) -> list[str]:
        argv = [sys.executable, "-m", "tui.serve.console"]
        return [*argv, "--read-only"] if self.options.read_only else argv

    def console_environment(self) -> dict[str, str]:
        environment = {SERVED_BY: self.host_name, SERVER_PID: str(os.getpid())}
        if self.options.database is not None:
            # In the environment, not on the command line: ps shows every user the
            # command line, and a PostgreSQL URL may hold a password.
            environment["NETCON_DATABASE_URL"] = self.options.database
        return environment

    def _new_session(self) -> ConsoleSession:
        return ConsoleSession(
            self.console_argv(), self.console_environment(), download_manager=self.downloads
        )

    async def _reserve(self, browser: str) -> str | None:
        """Start a console while its page loads (the page takes as long to load as the
        console to start); the page's websocket claims it. None if it cannot start."""
        session = self._new_session()
        key = secrets.token_urlsafe(16)
        # Counted from now: another page served while this one starts sees it.
        self.reserved[key] = (session, browser)
        try:
            await session.spawn(80, 24)
        except OSError as exc:
            del self.reserved[key]
            self.say(f"cannot start a console: {exc}")
            return None
        asyncio.get_running_loop().call_later(
            RESERVED_FOR, lambda: asyncio.ensure_future(self._unclaimed(key))
        )
        return key

    async def _evict(self, browser: str) -> bool:
        """Make room by ending a console this browser's earlier page never claimed (a
        page reloaded over and over must not lock its own browser out)."""
        key = next((k for k, (_, owner) in self.reserved.items() if owner == browser), None)
        if key is None:
            return False
        await self._unclaimed(key)
        return True

    async def _unclaimed(self, key: str) -> None:
        reserved = self.reserved.pop(key, None)
        if reserved is not None:
            await reserved[0].stop()

    def _claim(self, request: web.Request) -> ConsoleSession | None:
        key = request.match_info.get("console")
        reserved = self.reserved.get(key) if key is not None else None
        # Only by the browser session whose page it was started for, once it runs.
        if (
            key is None
            or reserved is None
            or reserved[1] != request.cookies.get(self.gate.cookie)
            or reserved[0].pid is None
        ):
            return None
        del self.reserved[key]
        return reserved[0]

    async def console_socket(self, request: web.Request) -> web.StreamResponse:
        if not self.gate.same_origin(request):
            self.say(
                f"refused a websocket from origin {request.headers.get('Origin')!r} "
                f"({request.remote})"
            )
            return self._page(403, "Wrong origin", "The console opens only from its own page.")
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        session = self._claim(request)
        if session is None and self.running >= self.options.max_sessions:
            count = self.options.max_sessions
            await websocket.close(
                code=LIMIT, message=f"all {count} browser consoles are in use".encode()
            )
            return websocket
        width = _cells(request.query.get("width"), 80)
        height = _cells(request.query.get("height"), 24)
        claimed = session is not None
        if session is None:
            session = self._new_session()
        self.sessions[session] = websocket
        self._serial += 1
        number = self._serial
        try:
            if not claimed:
                await session.spawn(width, height)
            session.relay(websocket.send_bytes, websocket.send_str)
            # The first packet a console reads, which it waits for before drawing.
            await session.set_terminal_size(width, height)
            self.say(f"console {number} started (pid {session.pid}) for {request.remote}")
            ended = asyncio.ensure_future(session.ended())
            reading = asyncio.ensure_future(self._relay_input(websocket, session))
            await asyncio.wait({ended, reading}, return_when=asyncio.FIRST_COMPLETED)
            if self.stopping:
                await websocket.close(code=GOING_AWAY, message=b"netcon serve stopped")
            elif ended.done():
                ending = ended.result()
                self.say(f"console {number} ended: {ending.reason}")
                await websocket.close(code=ending.code, message=ending.reason_bytes())
            else:
                self.say(f"console {number}: its browser went away; ending it")
            reading.cancel()
            ended.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        finally:
            # Shielded: a handler cancelled at shutdown still ends its console.
            await asyncio.shield(self._end(session))
        return websocket

    async def _end(self, session: ConsoleSession) -> None:
        try:
            await session.stop()
        finally:
            self.sessions.pop(session, None)

    async def _relay_input(self, websocket: web.WebSocketResponse, session: ConsoleSession) -> None:
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not envelope:
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            if kind == "stdin" and isinstance(data, str):
                await session.send_bytes(data.encode())
            elif kind == "resize" and isinstance(data, dict):
                await session.set_terminal_size(
                    _cells(str(data.get("width")), 80), _cells(str(data.get("height")), 24)
                )
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await session.blur()
            elif kind == "focus":
                await session.focus()

    async def stop_all(self) -> None:
        """End every console, telling each page why. Before the server closes its
        connections: a closed connection tells a page nothing."""
        self.stopping = True
        reserved = [session for session, _ in self.reserved.values()]
        self.reserved.clear()
        running = list(self.sessions.items())
        # Said before the connections go, so that each page knows why.
        await asyncio.gather(
            *(websocket.close(code=GOING_AWAY, message=b"netcon serve stopped")
              for _, websocket in running)
        )
        await asyncio.gather(*(session.stop() for session, _ in running),
                             *(session.stop() for session in reserved))

    def say(self, line: str) -> None:
        print(f"netcon serve: {line}", file=sys.stderr, flush=True)


def listen(options: ServeOptions) -> socket.socket:
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    try:
        return socket.create_server((options.host, options.port), family=family, backlog=128)
    except OSError as exc:
        from core.errors import HostError

        raise HostError(
            f"--listen: cannot listen on {options.url_host}:{options.port}: "
            f"{os.strerror(exc.errno) if exc.errno else exc}"
        ) from None


async def _run(options: ServeOptions, sock: socket.socket) -> None:
    server = ConsoleServer(options, sock.getsockname()[1])
    runner = web.AppRunner(server.application(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=options.tls)
    await site.start()
    for line in server.start_lines():
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    try:
        await stop.wait()
    finally:
        server.say("stopping: ending every browser console")
        await server.stop_all()
        await runner.cleanup()


def serve(options: ServeOptions) -> int:
    sock = listen(options)
    asyncio.run(_run(options, sock))
    return 0
