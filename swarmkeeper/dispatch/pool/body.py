"""Request bodies of the pool, read in linear time and never past a cap (MaxNetworkRequestMegabytes)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message, Receive

from swarmkeeper import dotnet


class TooLarge(Exception):
    """The body is longer than the cap."""


def body_limit(request: Request) -> int:
    """The most bytes a pool request body may have (Settings.fds Network.MaxNetworkRequestMegabytes)."""
    return int(request.app.state.services.settings.network.MaxNetworkRequestMegabytes) * 1024 * 1024


def declared_too_large(request: Request, limit: int) -> bool:
    declared = dotnet.parse_int(request.headers.get("content-length", ""), 64)
    return declared is not None and declared > limit


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body; TooLarge as soon as it passes ``limit`` (before it is all read)."""
    if declared_too_large(request, limit):
        raise TooLarge
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise TooLarge
    return bytes(raw)


def capped_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises TooLarge once the body it has passed on exceeds ``limit`` (for the
    multipart parser, which reads the stream itself)."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge
        return message

    return limited


def capped_request(request: Request, limit: int) -> Request:
    """The same request, its body read through ``capped_receive`` (TooLarge past ``limit``)."""
    if declared_too_large(request, limit):
        raise TooLarge
    return Request(request.scope, capped_receive(request.receive, limit))
