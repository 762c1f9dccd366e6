"""Timing of ``POST /API/<Route>`` calls, as ASGI middleware: the whole call is measured (the
transport checks, the handler, the answer's serialisation), labelled by the route's declared name.
A name no route has is labelled ``unknown``, so a client cannot create series at will.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from swarmkeeper.services import Services

API_PREFIX = "/api/"
UNKNOWN_ROUTE = "unknown"


def route_label(services: Services, path: str) -> str:
    """The declared name of the route a path calls (``/API/listbackends`` → ``ListBackends``)."""
    route = services.routes.get(path[len(API_PREFIX):])
    return route.name if route is not None else UNKNOWN_ROUTE


class APILatency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if scope["type"] != "http" or services is None or not scope["path"].lower().startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500  # what a client sees if the app fails before it answers

        async def send_noting_status(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            services.metrics.api_call(route_label(services, scope["path"]), code, time.perf_counter() - started)
