"""The web page as a :class:`Feature`: ``/`` (the page), ``/static/*`` (its assets, all served
from the package, nothing from a CDN) and ``/events/backends`` (the push stream, see stream.py).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swarmkeeper.features import Feature
from swarmkeeper.web.stream import StreamPolicy, stream_endpoint

STATIC = Path(__file__).parent / "static"

#: The page runs only its own scripts and styles and talks only to this server, so markup that
#: slips into the page can never run or phone out.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


class WithHeaders:
    """Adds headers to every response of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.raw]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def web_routes(policy: StreamPolicy) -> list[BaseRoute]:
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/events/backends", stream_endpoint(policy), methods=["GET"]),
        Mount("/static", app=WithHeaders(StaticFiles(directory=STATIC), PAGE_HEADERS)),
    ]


def web_feature(policy: StreamPolicy | None = None) -> Feature:
    """The feature; tests pass a policy with a short heartbeat."""
    chosen = policy or StreamPolicy()
    return Feature(name="web", http_routes=lambda: web_routes(chosen))


WEB = web_feature()
