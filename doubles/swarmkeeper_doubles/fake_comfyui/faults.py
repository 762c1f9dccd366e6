"""The faults on the wire: ``garbage`` in the app, ``hang`` and ``close`` below HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from swarmkeeper_doubles.fake_comfyui.options import Fault

if TYPE_CHECKING:
    from swarmkeeper_doubles.fake_comfyui.engine import FakeComfy


GARBAGE_PAGE = "<!DOCTYPE html><html><body><h1>It works!</h1></body></html>"


class GarbageMiddleware:
    """The ``garbage`` fault: an HTML page for every route (one non-JSON frame on the socket)."""

    def __init__(self, app: ASGIApp, engine: FakeComfy) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.engine.fault is not Fault.GARBAGE or scope["path"].startswith("/__fake__"):
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await Response(GARBAGE_PAGE, media_type="text/html")(scope, receive, send)
        elif scope["type"] == "websocket":
            socket = WebSocket(scope, receive, send)
            await socket.accept()
            await socket.send_text(GARBAGE_PAGE)
            await socket.close()


class FaultyHTTPProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol (httptools: a C parser, as aiohttp's) with the ``hang`` and ``close``
    faults, below HTTP."""

    engine: FakeComfy

    def data_received(self, data: bytes) -> None:
        fault = self.engine.fault
        if fault in (Fault.HANG, Fault.CLOSE) and b" /__fake__/" not in data.split(b"\r\n", 1)[0]:
            self._unset_keepalive_if_required()  # a hung connection must not time out politely
            if fault is Fault.CLOSE:
                self.transport.close()
            return
        super().data_received(data)


def protocol_for(engine: FakeComfy) -> type[HttpToolsProtocol]:
    """A protocol class bound to one fake (uvicorn builds protocols from a class)."""
    return type("FakeComfyHTTPProtocol", (FaultyHTTPProtocol,), {"engine": engine})
