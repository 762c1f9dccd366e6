"""An API request's body, bounded before it is trusted.

The cap depends on who is calling, decided from the headers before a byte of the body is read: a
caller identified by then (accounts off: everyone is the local owner; accounts on: a login cookie,
an API key, an ``X-Session-Id`` header, or the localhost bypass) may send up to
``MaxNetworkRequestMegabytes``; anyone else, ``--anonymous_body_mb`` (1 MB), since SwarmUI clients
send their ``session_id`` inside the body, where it cannot be checked before the body is read.

The body is read chunk by chunk into one growing buffer (linear time), the cap checked as each chunk
arrives (never reading past it), each chunk awaited for at most ``body_timeout``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, HTTPConnection, Request

from swarmkeeper.exceptions import TransportError

if TYPE_CHECKING:
    from swarmkeeper.services import Services

MB = 1024 * 1024


class BodyTooLarge(TransportError):
    """An unidentified caller's body over the anonymous cap: HTTP 413 (SwarmUI has no such cap)."""

    status_code = 413

    def __init__(self, cap: int) -> None:
        super().__init__("request_too_large", f"Request bodies over {cap / MB:g} MB need a caller known before "
                                              f"the body is read: log in (cookie), or send an API key "
                                              f"(Authorization: Bearer) or an X-Session-Id header.")


class BodyTimeout(TransportError):
    status_code = 408

    def __init__(self, seconds: float) -> None:
        super().__init__("request_timeout", f"The request body paused for more than {seconds:g} s.")


async def known_caller(services: Services, connection: HTTPConnection) -> bool:
    """True when the caller is identified by the request's headers alone."""
    try:
        if await services.users.user_for_request(connection) is not None:
            return True
        raw_id = connection.headers.get("x-session-id")
        session = services.sessions.get(raw_id) if raw_id else None
        return session is not None and await services.users.user_for_session(session, connection) is not None
    except TransportError:  # a bad key: unknown here; the call itself will say why
        return False


async def body_cap(services: Services, connection: HTTPConnection, length: int, full_cap: int) -> int:
    """The cap for this request's body; the caller is looked up only when the body needs it."""
    anonymous = services.config.wire.anonymous_body_bytes
    if length <= anonymous or await known_caller(services, connection):
        return full_cap
    return anonymous


async def read_capped(request: Request, cap: int, idle_timeout: float) -> bytearray:
    """The whole body, or BodyTooLarge as soon as it passes ``cap`` (the rest is never read). Read
    message by message from the server (one timer per message: a small body, all of it received
    with the headers, is one message, where Starlette's stream took three steps and three timers)."""
    body = bytearray()
    try:
        while True:
            async with asyncio.timeout(idle_timeout):
                message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body += message.get("body", b"")
            if len(body) > cap:
                raise BodyTooLarge(cap)
            if not message.get("more_body", False):
                return body
    except TimeoutError:
        raise BodyTimeout(idle_timeout) from None
    except ClientDisconnect:
        raise TransportError("basic_api", "The client went away while sending the body") from None
