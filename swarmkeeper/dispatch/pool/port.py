"""``--comfy_port``: the pool at the root of a port of its own, so ComfyUI clients that build root
paths (``/prompt``, ``/ws``) work unchanged.

The port serves the main app itself, with every path moved under ``/ComfyBackendDirect``: the
same routes, middleware (RequiredAuthorization, accounts) and checks, and the main port's limits on
the wire (:mod:`swarmkeeper.limits`); its websockets write the pool's frames straight to the
connection (:mod:`~swarmkeeper.dispatch.pool.wsframes`). A port that cannot be bound
is logged and the server carries on (the pool is still under ``/ComfyBackendDirect/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from swarmkeeper.dispatch.pool.wsframes import PoolWebSocketProtocol
from swarmkeeper.dispatch.targets import DIRECT_PATH
from swarmkeeper.limits import WireLimits, server_config
from swarmkeeper.net import COMFY_KEEP_ALIVE_SECONDS

log = logging.getLogger("swarmkeeper.dispatch.pool")


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server run beside the main one in the same process: Ctrl-C and SIGTERM stay the
    main server's. (``Server.serve`` takes them over while it runs and puts back what it found when
    it ends: the pool port would get the SIGTERM meant for the server, and leave the main server's
    own shutdown with no handler of its own.)"""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listener whose connections send at once (TCP_NODELAY). ``socket.create_server`` makes a
    socket with protocol 0, which asyncio does not recognise as TCP and leaves with Nagle's algorithm
    on: every answer written in two parts then waits 40 ms for the client's delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind((host, port))
        listener.listen(2048)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


class PoolPort:
    def __init__(self, app: Callable[[], ASGIApp | None], host: str, port: int,
                 limits: WireLimits | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits or WireLimits()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app()
        if scope["type"] not in ("http", "websocket"):
            return
        if app is None:
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"Starting up"})
            return
        path = scope["path"] if scope["path"].startswith("/") else "/" + scope["path"]
        moved: dict[str, Any] = {**scope, "path": DIRECT_PATH + path,
                                 "raw_path": DIRECT_PATH.encode() + (scope.get("raw_path") or path.encode())}
        await app(moved, receive, send)

    async def start(self) -> bool:
        """Bind and serve (connections wait in the bound socket's backlog until uvicorn takes them);
        False (logged) when the port cannot be bound."""
        try:
            self._socket = listening_socket(self.host, self.port)
        except OSError as error:
            log.warning("The ComfyUI pool cannot listen on %s:%s (%s); it is still served under %s/ on the main "
                        "port", self.host, self.port, error.strerror or error, DIRECT_PATH)
            return False
        config = server_config(self, self.limits, keep_alive=COMFY_KEEP_ALIVE_SECONDS, lifespan="off",
                               log_config=None, access_log=False, timeout_graceful_shutdown=2,
                               ws=PoolWebSocketProtocol, ws_per_message_deflate=False)
        self._server = EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="comfy-pool-port")
        log.info("ComfyUI pool listening on http://%s:%s (point any ComfyUI client here)", self.host, self.port)
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(5):
                    await self._task
        if self._socket is not None:
            self._socket.close()
