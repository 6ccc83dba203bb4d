"""Who gets in: the token printed at start, the session cookies it is exchanged for, and
the Origin a websocket must come from.

A token made at start is good for one exchange (the printed URL is one-time); a token
from --token-file is the admin's standing credential and is good until the file's token
is changed and the server restarted. Sessions live in this process only, so a restart
revokes every cookie.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

TOKEN_BYTES = 32


class Gate:
    def __init__(self, token: str | None, *, port: int, tls: bool) -> None:
        self._token: str | None = token if token is not None else secrets.token_urlsafe(
            TOKEN_BYTES
        )
        self.one_time = token is None
        self.tls = tls
        # Cookies ignore ports: two servers on one host keep apart by name.
        self.cookie = f"netcon-serve-{port}"
        self._sessions: set[str] = set()

    @property
    def token(self) -> str | None:
        """The token, until a one-time token has been used."""
        return self._token

    def exchange(self, offered: str) -> str | None:
        """A new session for the right token, else None."""
        token = self._token
        if token is None or not hmac.compare_digest(offered.encode(), token.encode()):
            return None
        if self.one_time:
            self._token = None
        session = secrets.token_urlsafe(TOKEN_BYTES)
        self._sessions.add(session)
        return session

    def admits(self, request: web.Request) -> bool:
        session = request.cookies.get(self.cookie)
        return session is not None and session in self._sessions

    def give_cookie(self, response: web.StreamResponse, session: str) -> None:
        # No Max-Age: the cookie ends with the browser, the session with the server.
        response.set_cookie(
            self.cookie,
            session,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.tls,
        )

    def same_origin(self, request: web.Request) -> bool:
        """Whether the request comes from a page this server served: its Origin is the
        scheme and host the request itself was sent to. Any other page (another port
        on 127.0.0.1, another site) gets no websocket, cookie or not."""
        origin = request.headers.get("Origin")
        if origin is None:
            return False
        expected = f"{'https' if self.tls else 'http'}://{request.host}"
        return hmac.compare_digest(origin.lower().encode(), expected.lower().encode())
