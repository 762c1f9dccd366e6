"""Cookies an API route sets (Login's ``swarm_token``): the route queues a ``Set-Cookie`` value in
the request's ASGI scope, and :class:`ResponseCookies` adds it to the response as it starts. The
scope is the one dict every layer of a request shares, so no handler needs to build a response."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swarmkeeper.accounts.tokens import COOKIE

SCOPE_KEY = "swarmkeeper.set_cookie"


def queue_cookie(connection: HTTPConnection, header_value: str) -> None:
    connection.scope.setdefault(SCOPE_KEY, []).append(header_value)


def _secure(connection: HTTPConnection) -> bool:
    forwarded = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return connection.url.scheme in ("https", "wss") or forwarded == "https"


def token_cookie(connection: HTTPConnection, token: str, max_age: int) -> str:
    """The login cookie: script-proof (HttpOnly), same-site, Secure over HTTPS."""
    value = f"{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return value + "; Secure" if _secure(connection) else value


def cleared_cookie(connection: HTTPConnection) -> str:
    return token_cookie(connection, "", 0)


class ResponseCookies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            queued = scope.get(SCOPE_KEY)
            if message["type"] == "http.response.start" and queued:
                extra = [(b"set-cookie", value.encode("latin-1")) for value in queued]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)
