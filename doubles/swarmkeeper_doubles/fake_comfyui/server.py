"""A running fake: uvicorn on a socket of its own, the engine's worker, and fault controls."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from swarmkeeper.net import COMFY_KEEP_ALIVE_SECONDS
from swarmkeeper_doubles.fake_comfyui.engine import Call, FakeComfy
from swarmkeeper_doubles.fake_comfyui.faults import protocol_for
from swarmkeeper_doubles.fake_comfyui.options import FakeOptions, Fault
from swarmkeeper_doubles.fake_comfyui.routes import build_app


class FakeComfyUI:
    """A running fake: its ``url``, its ``engine`` state, and fault controls."""

    def __init__(self, options: FakeOptions, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.options = options
        self.engine = FakeComfy(options, self.crash)
        self.sock = socket.create_server((host, port))
        # protocol 0 (create_server's) is not TCP to asyncio, which then leaves Nagle on: answers
        # written in two parts would wait 40 ms for a delayed ACK. ComfyUI's aiohttp sends at once.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(
            build_app(self.engine),
            http=protocol_for(self.engine),
            ws="websockets-sansio",
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=COMFY_KEEP_ALIVE_SECONDS,
        )
        self.server = uvicorn.Server(config)
        self.tasks: list[asyncio.Task[None]] = []
        self.crashed = asyncio.Event()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def calls(self) -> list[Call]:
        return self.engine.calls

    def calls_to(self, route: str, method: str | None = None) -> list[Call]:
        """Received calls to ``route`` (with or without its ``/api`` prefix)."""
        return [c for c in self.engine.calls if c.route == route and method in (None, c.method)]

    def set_fault(self, fault: Fault | str | None) -> None:
        """Switch the fault while running (``None`` heals it)."""
        self.engine.fault = Fault(fault) if fault else None

    async def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self.server.serve(sockets=[self.sock])),
            asyncio.create_task(self.engine.worker()),
        ]
        while not self.server.started:
            if self.tasks[0].done():
                self.tasks[0].result()
            await asyncio.sleep(0.01)

    def crash(self) -> None:
        """Die as a crashed process would: stop listening, drop every connection at once."""
        self.crashed.set()
        for server in getattr(self.server, "servers", []):
            server.close()
        for connection in list(self.server.server_state.connections):
            connection.transport.abort()
        self.server.should_exit = self.server.force_exit = True
        self.tasks[1].cancel()

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        self.server.should_exit = self.server.force_exit = True
        serve, worker = self.tasks
        worker.cancel()
        for task in (worker, serve):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.sock.close()


@contextlib.asynccontextmanager
async def run_fake_comfyui(
    *, port: int = 0, host: str = "127.0.0.1", options: FakeOptions | None = None, **fields: Any
) -> AsyncIterator[FakeComfyUI]:
    """Serve a fake ComfyUI in this event loop for the ``async with`` block.

    Give ``options`` or FakeOptions' fields as keywords: ``run_fake_comfyui(job_seconds=0.05,
    fault="hang")``. ``port=0`` picks a free port; see ``fake.url``.
    """
    fake = FakeComfyUI(options or FakeOptions(**fields), host=host, port=port)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
