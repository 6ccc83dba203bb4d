"""`netcon serve`: the console in a browser, behind a token, a cookie and an Origin check.

This module reads and checks the command line only; the server itself is the console's
(``tui/serve``), handed to the command line by the `netcon` executable as a callback, as
the console is, so the headless command line never imports it.
"""

from __future__ import annotations

import ipaddress
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from core import validate
from core.cli.collector import resume as resume_collector
from core.cli.context import Context
from core.cli.frontends import ServeOptions
from core.cli.spec import Command, arg
from core.errors import InvalidInput

if TYPE_CHECKING:
    import ssl

DEFAULT_LISTEN = "127.0.0.1:8023"
DEFAULT_MAX_SESSIONS = 4
MAX_SESSIONS = 100
# A token a person can paste from a file: URL-safe, long enough not to be guessed.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,256}")


def parse_listen(text: str) -> tuple[str, str, int, bool]:
    """``HOST:PORT`` as (bind address, URL host, port, loopback)."""
    field = "--listen"
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise InvalidInput(
            field, f"{validate.shown(text)} must be HOST:PORT (127.0.0.1:8023, [::1]:8023)"
        )
    port = validate.integer(field, port_text, 0, 65535)
    if host == "localhost":
        return "127.0.0.1", "localhost", port, True
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        raise InvalidInput(
            field,
            f"{validate.shown(host)} must be an IP address (127.0.0.1, [::1], 0.0.0.0) "
            "or localhost",
        ) from None
    if address.version == 6 and not bracketed:
        raise InvalidInput(field, f"an IPv6 address is written in brackets: [{host}]:{port}")
    url_host = f"[{address}]" if address.version == 6 else str(address)
    return str(address), url_host, port, address.is_loopback


def _readable(field: str, path: str) -> Path:
    file = Path(path)
    try:
        with file.open("rb"):
            pass
    except OSError as exc:
        raise InvalidInput(field, f"cannot read {path}: {exc.strerror or exc}") from None
    return file


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if key is None:
        raise InvalidInput("--tls-key", "is needed with --tls-cert")
    if cert is None:
        raise InvalidInput("--tls-cert", "is needed with --tls-key")
    _readable("--tls-cert", cert)
    _readable("--tls-key", key)
    import ssl  # only a command line that asks for TLS pays for it

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidInput(
            "--tls-cert", f"{cert} and {key} are not a PEM certificate and its key ({exc})"
        ) from None
    return context


def read_token(path: str) -> str:
    field = "--token-file"
    file = _readable(field, path)
    mode = file.stat().st_mode
    if not stat.S_ISREG(mode):
        raise InvalidInput(field, f"{path} is not a regular file")
    if mode & 0o077:
        raise InvalidInput(
            field,
            f"{path} is open to other users (mode {stat.S_IMODE(mode):04o}); chmod 600 it",
        )
    token = file.read_text(errors="replace").strip()
    if not _TOKEN.fullmatch(token):
        raise InvalidInput(
            field,
            f"{path} must hold one token of 32 or more letters, digits, '-' or '_' "
            "(make one with: openssl rand -hex 32)",
        )
    return token


def options_from(ctx: Context) -> ServeOptions:
    args = ctx.args
    host, url_host, port, loopback = parse_listen(args.listen)
    tls = tls_context(args.tls_cert, args.tls_key)
    if args.insecure and tls is not None:
        raise InvalidInput("--insecure", "contradicts --tls-cert; give one or the other")
    if not loopback and tls is None and not args.insecure:
        raise InvalidInput(
            "--listen",
            f"{url_host} is not a loopback address: give --tls-cert and --tls-key, or "
            "--insecure to serve the console unencrypted (the normal way in is an SSH "
            "tunnel to 127.0.0.1)",
        )
    max_sessions = validate.integer("--max-sessions", args.max_sessions, 1, MAX_SESSIONS)
    token = read_token(args.token_file) if args.token_file is not None else None
    return ServeOptions(
        host=host,
        port=port,
        url_host=url_host,
        loopback=loopback,
        tls=tls,
        read_only=bool(getattr(args, "read_only", False) or args.serve_read_only),
        max_sessions=max_sessions,
        token=token,
        token_file=Path(args.token_file).absolute() if args.token_file else None,
        database=ctx.database_url,
    )


def run_serve(ctx: Context) -> int:
    options = options_from(ctx)
    if ctx.serve is None:
        raise InvalidInput("serve", "this command line has no console to serve; run 'netcon serve'")
    # Opened once here so that a database the consoles could not open is said now, in
    # one line, not in every browser that connects.
    ctx.service.db.dispose()
    resume_collector()
    return ctx.serve(options)


command = Command(
    "serve",
    "serve the console to a browser (one-time URL, session cookie; SSH-tunnel to it)",
    (
        arg(
            "--listen",
            default=DEFAULT_LISTEN,
            metavar="HOST:PORT",
            help=f"where to listen (default {DEFAULT_LISTEN}; port 0 picks a free one); "
            "anything but loopback needs --tls-cert/--tls-key or --insecure",
        ),
        arg(
            "--read-only",
            action="store_true",
            dest="serve_read_only",
            help="every browser console opens without any action that changes state",
        ),
        arg(
            "--max-sessions",
            default=str(DEFAULT_MAX_SESSIONS),
            metavar="N",
            help=f"browser consoles at once (default {DEFAULT_MAX_SESSIONS}, at most "
            f"{MAX_SESSIONS}); the next one is told the limit",
        ),
        arg("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate"),
        arg("--tls-key", metavar="FILE", help="the certificate's PEM private key"),
        arg(
            "--insecure",
            action="store_true",
            help="allow plain HTTP on an address other than loopback",
        ),
        arg(
            "--token-file",
            metavar="FILE",
            help="take the token from FILE (mode 600) and keep it across restarts, "
            "instead of a new one-time token each start",
        ),
    ),
    run_serve,
    description="Serve the console to a browser. At start it prints a URL with a token: "
    "opening it sets a session cookie, and every other request without that cookie, and "
    "every websocket from another origin, is refused (403). The normal way in is an SSH "
    "tunnel: ssh -L 8023:127.0.0.1:8023 nethost, then open the printed URL.",
)
