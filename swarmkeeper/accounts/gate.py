"""SwarmUI's global gate (``Network.RequiredAuthorization``): when set, every request (API, page,
stream, websocket) must carry an ``Authorization`` header exactly equal to it, unless it comes from
an address in ``Network.AuthBypassIPs`` (IPv4-mapped IPv6 addresses count as their IPv4 form).
Anything else gets SwarmUI's plain-text ``401 Unauthorized``.

swarmkeeper also lets through a request whose ``Authorization`` is a valid API key (when accounts
are on): the header can hold only one of the two, and a key holder is no stranger.

The comparison is constant-time, and the log never shows the header, only its length.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from swarmkeeper.accounts.source import AccountUsers, bearer_key
from swarmkeeper.exceptions import InvalidAPIKey

if TYPE_CHECKING:
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.accounts")

UNAUTHORIZED = b"Unauthorized"


def plain_address(host: str) -> str:
    """``::ffff:1.2.3.4`` as ``1.2.3.4``, as SwarmUI compares it."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else str(address)


def bypassed(bypass_list: str, host: str) -> bool:
    allowed = {entry.strip() for entry in bypass_list.split(",") if entry.strip()}
    return plain_address(host) in allowed or host in allowed


async def _valid_key(services: Services, connection: HTTPConnection) -> bool:
    users = services.users
    if not isinstance(users, AccountUsers) or bearer_key(connection) is None:
        return False
    try:
        return await users.user_for_bearer(connection) is not None
    except InvalidAPIKey:
        return False


def raw_authorization(connection: HTTPConnection) -> bytes:
    """The first Authorization header as sent (bytes: the setting may hold any UTF-8 text)."""
    for name, value in connection.scope.get("headers", []):
        if name.lower() == b"authorization":
            return bytes(value)
    return b""


async def allowed(services: Services, connection: HTTPConnection) -> bool:
    required = services.settings.network.RequiredAuthorization
    if not required.strip():
        return True
    header = raw_authorization(connection)
    if hmac.compare_digest(header, required.encode()):
        return True
    host = connection.client.host if connection.client else ""
    if bypassed(services.settings.network.AuthBypassIPs, host) or await _valid_key(services, connection):
        return True
    if header:
        log.debug("Unauthorized request from %s (auth header length %s, expected %s)", host, len(header),
                  len(required))
    else:
        log.debug("Unauthorized request from %s (no auth header)", host)
    return False


class AuthGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        guarded = scope["type"] in ("http", "websocket") and services is not None
        if guarded and services is not None and not await allowed(services, HTTPConnection(scope)):
            await refuse(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """401 ``Unauthorized`` as plain text; a websocket is refused before it opens (as an HTTP 401
    where the server can send one, else closed with 1008)."""
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(UNAUTHORIZED)).encode())]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": UNAUTHORIZED})
        return
    await receive()  # websocket.connect
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": UNAUTHORIZED})
    else:
        await send({"type": "websocket.close", "code": 1008})
