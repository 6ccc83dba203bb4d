"""`netcon serve` from the network: a real server process, an HTTP client with a cookie
jar, websockets with and without the right Origin, and the console processes it starts.
The same server in a real browser: tests/tui/test_serve_browser.py."""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import signal
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.config import load_settings
from core.service import NetconService
from core.service.demo import load_demo
from tests.serving import Served, alive, environment, netcon, wait_until


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("serve") / "cloud.db"
    service = NetconService(f"sqlite:///{path}", load_settings(paths=[], host="nethost1"))
    load_demo(service)
    service.db.dispose()
    return f"sqlite:///{path}"


@pytest.fixture
def serve(tmp_path: Path, cloud: str) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*args: str, db: str = cloud, env: dict[str, str] | None = None) -> Served:
        served = Served(tmp_path, db, *args, env=env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def client(**options: Any) -> aiohttp.ClientSession:
    # Cookies from an IP address are kept only by an "unsafe" jar.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **options)


# Escape sequences (styles, cursor moves) between the characters of a line.
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]")


async def screen_until(websocket: aiohttp.ClientWebSocketResponse, text: bytes) -> bytes:
    """The text the console drew until ``text`` appeared in it, without its escapes."""
    seen = b""

    async def read() -> bytes:
        nonlocal seen
        while text not in seen:
            message = await websocket.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                seen += ESCAPES.sub(b"", message.data)
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                raise AssertionError(f"closed ({message.data}, {message.extra}) before {text!r}")
        return seen

    try:
        return await asyncio.wait_for(read(), 60)
    except TimeoutError:
        raise AssertionError(f"{text!r} never drawn; drawn: {seen[-2000:]!r}") from None


async def closing(websocket: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    """The close code and reason the server ends the websocket with."""
    while True:
        message = await asyncio.wait_for(websocket.receive(), 60)
        # The frame's own code: the connection may be gone before the client replies.
        if message.type == aiohttp.WSMsgType.CLOSE:
            return int(message.data), str(message.extra or "")
        if message.type == aiohttp.WSMsgType.CLOSED:
            return int(websocket.close_code or 0), ""


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def sign_in(admin: aiohttp.ClientSession, served: Served) -> None:
    """Open the printed URL for its cookie, without loading the page behind it."""
    async with admin.get(served.url, allow_redirects=False) as response:
        assert response.status == 303


PAGE_SOCKET = re.compile(r'data-session-websocket-url="([^"]+)"')


async def page_socket(
    admin: aiohttp.ClientSession, served: Served, size: str = "width=100&height=30"
) -> aiohttp.ClientWebSocketResponse:
    """What the page does: load it, then open the websocket it names."""
    async with admin.get(served.base + "/") as response:
        assert response.status == 200, await response.text()
        match = PAGE_SOCKET.search(await response.text())
    assert match
    return await admin.ws_connect(f"{match.group(1)}?{size}", origin=served.base)


# -- the command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--listen", "0.0.0.0:8023"], "--listen"),
        (["--listen", "192.0.2.10:8023"], "--listen"),
        (["--listen", "nethost:8023"], "--listen"),
        (["--listen", "127.0.0.1"], "--listen"),
        (["--listen", "127.0.0.1:65536"], "--listen"),
        (["--listen", "127.0.0.1:http"], "--listen"),
        (["--listen", "::1:8023"], "--listen"),
        (["--max-sessions", "0"], "--max-sessions"),
        (["--max-sessions", "many"], "--max-sessions"),
        (["--token-file", "/nonexistent/token"], "--token-file"),
        (["--tls-cert", "/etc/hostname"], "--tls-key"),
        (["--tls-key", "/etc/hostname"], "--tls-cert"),
        (["--tls-cert", "/etc/hostname", "--tls-key", "/etc/hostname"], "--tls-cert"),
        (["--tls-cert", "/nonexistent", "--tls-key", "/etc/hostname"], "--tls-cert"),
    ],
)
def test_bad_arguments_are_one_line_and_status_2(
    tmp_path: Path, cloud: str, args: list[str], field: str
) -> None:
    result = netcon("--db", cloud, "serve", *args, env=environment(tmp_path))
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"netcon: {field}: "), result.stderr


def test_a_token_file_must_be_private_and_hold_a_token(tmp_path: Path, cloud: str) -> None:
    env = environment(tmp_path)
    token = tmp_path / "token"
    token.write_text("a" * 64 + "\n")
    token.chmod(0o644)
    result = netcon("--db", cloud, "serve", "--token-file", str(token), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("netcon: --token-file: ") and "chmod 600" in result.stderr
    token.chmod(0o600)
    token.write_text("short\n")
    result = netcon("--db", cloud, "serve", "--token-file", str(token), env=env)
    assert result.returncode == 2 and "32 or more" in result.stderr


def test_an_address_in_use_is_one_line(tmp_path: Path, cloud: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = netcon(
            "--db", cloud, "serve", "--listen", f"127.0.0.1:{port}", env=environment(tmp_path)
        )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"netcon: --listen: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


# -- who gets in -----------------------------------------------------------------------


def test_only_the_printed_url_gets_in_and_only_once(serve: Callable[..., Served]) -> None:
    served = serve()

    async def scenario() -> None:
        async with client() as stranger:
            for path in ("/", "/static/js/textual.js", "/page/netcon.js", "/download/x", "/ws"):
                async with stranger.get(served.base + path) as response:
                    assert response.status == 403, path
                    assert "Open the URL" in await response.text()
            async with stranger.get(served.base + "/?token=" + "x" * 43) as response:
                assert response.status == 403
        async with client() as admin:
            async with admin.get(served.url, allow_redirects=False) as response:
                assert response.status == 303
                assert response.headers["Location"] == "/"
                cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            assert "Secure" not in cookie  # plain HTTP on loopback
            async with admin.get(served.base + "/") as response:
                assert response.status == 200
                page = await response.text()
                assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
            assert f'data-session-websocket-url="ws://127.0.0.1:{served.port}/ws/' in page
            async with admin.get(served.base + "/static/js/textual.js") as response:
                assert response.status == 200
        # The one-time URL does not open a second browser.
        async with client() as second, second.get(served.url) as response:
            assert response.status == 403
            assert "one-time" in await response.text()

    run(scenario())
    # One console, started as the admin's page loaded; none for anyone else.
    assert len(served.consoles()) == 1


def test_a_websocket_from_another_origin_gets_403(serve: Callable[..., Served]) -> None:
    served = serve()
    own = served.base

    async def scenario() -> None:
        async with client() as admin:
            await sign_in(admin, served)
            for origin in (
                f"http://127.0.0.1:{served.port + 1}",
                "http://evil.example",
                f"http://localhost:{served.port}",
                "null",
                None,
            ):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await admin.ws_connect(own + "/ws", origin=origin)
                assert refused.value.status == 403, origin
            assert served.consoles() == []
            websocket = await admin.ws_connect(own + "/ws?width=100&height=30", origin=own)
            screen = await screen_until(websocket, b"Networks (6)")
            assert b"browser@" in screen
            await websocket.close()

    run(scenario())
    assert "refused a websocket from origin 'http://evil.example'" in served.messages()


def test_a_token_file_keeps_one_token(tmp_path: Path, serve: Callable[..., Served]) -> None:
    token = tmp_path / "token"
    token.write_text(os.urandom(32).hex() + "\n")
    token.chmod(0o600)
    served = serve("--token-file", str(token))
    # The token itself stays in its file, out of logs.
    assert token.read_text().strip() not in served.printed
    assert f"the token in {token}" in served.printed
    url = served.base + "/?token=" + token.read_text().strip()

    async def scenario() -> None:
        for _ in range(2):  # a standing credential, not a one-time URL
            async with client() as admin, admin.get(url) as response:
                assert response.status == 200

    run(scenario())


# -- consoles ----------------------------------------------------------------------------


def test_the_session_limit_holds(serve: Callable[..., Served]) -> None:
    served = serve("--max-sessions", "1")
    own = served.base

    async def scenario() -> None:
        async with client() as admin:
            await sign_in(admin, served)
            first = await page_socket(admin, served)
            await screen_until(first, b"Networks (6)")
            async with admin.get(own + "/") as response:
                assert response.status == 503
                text = await response.text()
                assert "--max-sessions 1" in text and "all are open" in text
            second = await admin.ws_connect(own + "/ws", origin=own)
            code, reason = await closing(second)
            assert (code, reason) == (4002, "all 1 browser consoles are in use")
            assert len(served.consoles()) == 1
            await first.close()
            wait_until(lambda: served.consoles() == [], "the first console ended")
            # A page loaded again and again keeps one console waiting for it, not one
            # each, so a browser never locks itself out.
            for _ in range(3):
                async with admin.get(own + "/") as response:
                    assert response.status == 200
            assert len(served.consoles()) == 1
            third = await page_socket(admin, served)
            await screen_until(third, b"Networks (6)")
            await third.close()

    run(scenario())


def test_closing_the_socket_ends_its_console(serve: Callable[..., Served]) -> None:
    served = serve()

    async def scenario() -> None:
        async with client() as admin:
            await sign_in(admin, served)
            websocket = await page_socket(admin, served)
            await screen_until(websocket, b"Networks (6)")
            [pid] = served.consoles()
            await websocket.close()
            wait_until(lambda: not alive(pid), "the console process ended")

    run(scenario())


def test_a_console_that_dies_or_quits_says_which(serve: Callable[..., Served]) -> None:
    served = serve()

    async def scenario() -> None:
        async with client() as admin:
            await sign_in(admin, served)
            websocket = await page_socket(admin, served)
            await screen_until(websocket, b"Networks (6)")
            [pid] = served.consoles()
            os.kill(pid, signal.SIGKILL)
            code, reason = await closing(websocket)
            assert code == 4001
            assert reason.startswith("the console process ended (killed by SIGKILL)")

            websocket = await page_socket(admin, served)
            await screen_until(websocket, b"Networks (6)")
            await websocket.send_json(["stdin", "q"])
            assert await closing(websocket) == (4000, "the console was quit")

    run(scenario())
    wait_until(lambda: served.consoles() == [], "no console left")


def test_stopping_the_server_ends_every_console(serve: Callable[..., Served]) -> None:
    served = serve()

    async def scenario() -> None:
        async with client() as admin:
            await sign_in(admin, served)
            sockets = [await page_socket(admin, served) for _ in range(2)]
            for websocket in sockets:
                await screen_until(websocket, b"Networks (6)")
            pids = served.wait_consoles(2)
            served.process.send_signal(signal.SIGTERM)
            for websocket in sockets:
                assert (await closing(websocket))[0] == 1001
            wait_until(lambda: not any(alive(pid) for pid in pids), "consoles ended")

    run(scenario())
    assert served.process.wait(30) == 0


def test_a_killed_server_takes_its_consoles_with_it(serve: Callable[..., Served]) -> None:
    served = serve()

    async def scenario() -> list[int]:
        async with client() as admin:
            await sign_in(admin, served)
            websocket = await page_socket(admin, served)
            await screen_until(websocket, b"Networks (6)")
            pids = served.consoles()
            served.process.kill()
            served.process.wait()
            return pids

    pids = run(scenario())
    assert pids
    wait_until(lambda: not any(alive(pid) for pid in pids), "orphaned consoles ended")


def test_read_only_reaches_every_console(serve: Callable[..., Served]) -> None:
    served = serve("--read-only")

    async def scenario() -> None:
        async with client() as admin:
            await sign_in(admin, served)
            websocket = await page_socket(admin, served)
            screen = await screen_until(websocket, b"Networks (6)")
            assert b"read-only" in screen
            assert b"New network" not in screen  # the action is hidden
            await websocket.close()

    run(scenario())


def _certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert = directory / "cert.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private = directory / "key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, private


def test_tls_serves_https_with_a_secure_cookie(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    cert, key = _certificate(tmp_path)
    served = serve("--tls-cert", str(cert), "--tls-key", str(key))
    assert served.url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=str(cert))

    async def scenario() -> None:
        async with client(connector=aiohttp.TCPConnector(ssl=trusted)) as admin:
            async with admin.get(served.url, allow_redirects=False) as response:
                assert response.status == 303
                assert "Secure" in response.headers["Set-Cookie"]
            async with admin.get(served.base + "/") as response:
                assert 'data-session-websocket-url="wss://' in await response.text()
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await admin.ws_connect(served.base + "/ws", origin=f"http://127.0.0.1:{served.port}")
            websocket = await admin.ws_connect(served.base + "/ws", origin=served.base)
            await screen_until(websocket, b"Networks (6)")
            await websocket.close()

    run(scenario())
