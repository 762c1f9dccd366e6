"""Ways tests run a swarmkeeper server: in-process (ASGI, fast), on loopback in-process (a real
uvicorn socket), and as its own process (for kill -9 and the command line)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from swarmkeeper.app import create_app
from swarmkeeper.config import ServerConfig
from swarmkeeper.features import Feature
from swarmkeeper.net import SWARM_KEEP_ALIVE_SECONDS
from swarmkeeper.services import Services
from tests.ports import free_port

DUMMY_TYPES = ("swarmkeeper.testing.dummy_backend",)
ROOT = Path(__file__).resolve().parent.parent


class APIClient:
    """A test's view of the API: raw responses when it wants them, sessions handled for it."""

    def __init__(self, http: httpx.AsyncClient, services: Services | None = None) -> None:
        self.http = http
        self.services = services
        self.session_id: str | None = None

    async def new_session(self) -> str:
        response = await self.http.post("/API/GetNewSession", json={})
        assert response.status_code == 200, response.text
        self.session_id = response.json()["session_id"]
        return self.session_id

    async def raw(self, route: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.http.post(f"/API/{route}", json=body if body is not None else {}, **kwargs)

    async def call(self, route: str, **params: Any) -> httpx.Response:
        if self.session_id is None:
            await self.new_session()
        return await self.raw(route, {"session_id": self.session_id, **params})

    async def ok(self, route: str, **params: Any) -> dict[str, Any]:
        """Call, and insist on HTTP 200 with no error key."""
        response = await self.call(route, **params)
        assert response.status_code == 200, response.text
        data = response.json()
        assert "error" not in data, data
        return data

    async def error(self, route: str, **params: Any) -> str:
        """Call, and insist on SwarmUI's route-level error: HTTP 200 ``{"error": ...}`` alone."""
        response = await self.call(route, **params)
        assert response.status_code == 200, response.text
        data = response.json()
        assert list(data) == ["error"], data
        return str(data["error"])

    async def wait_status(self, backend_id: int, *statuses: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll ListBackends until the backend has one of the statuses."""
        deadline = time.monotonic() + timeout
        entry: dict[str, Any] = {}
        while time.monotonic() < deadline:
            listing = await self.ok("ListBackends", nonreal=True)
            entry = listing.get(str(backend_id), {})
            if entry.get("status") in statuses:
                return entry
            await asyncio.sleep(0.05)
        raise AssertionError(f"backend {backend_id} never reached {statuses}: {entry}")


def test_config(data_dir: Path, **overrides: Any) -> ServerConfig:
    options: dict[str, Any] = {"data_dir": data_dir, "backend_type_modules": DUMMY_TYPES, **overrides}
    return ServerConfig(**options)


test_config.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@contextlib.asynccontextmanager
async def in_process(config: ServerConfig, client: tuple[str, int] = ("127.0.0.1", 123)) -> AsyncIterator[APIClient]:
    """The app through ASGI, its lifespan run as a server would run it; requests come from ``client``
    (a loopback address unless a test needs a remote caller)."""
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield APIClient(http, app.state.services)


@dataclass
class LoopbackServer:
    url: str
    app: Starlette
    server: uvicorn.Server
    task: asyncio.Task[None] = field(repr=False)

    @property
    def services(self) -> Services:
        return self.app.state.services


@contextlib.asynccontextmanager
async def on_loopback(config: ServerConfig, features: list[Feature] | None = None) -> AsyncIterator[LoopbackServer]:
    """A real uvicorn server on 127.0.0.1, in this process (with app.FEATURES unless told)."""
    port = free_port()
    app = create_app(config, features=features)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on", timeout_keep_alive=SWARM_KEEP_ALIVE_SECONDS))
    app.state.exiting = lambda: server.should_exit  # as cli.py sets it: open push streams end at exit
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield LoopbackServer(f"http://127.0.0.1:{port}", app, server, task)
    finally:
        server.should_exit = True
        await task


class ServerProcess:
    """``python -m swarmkeeper serve`` as a child process."""

    def __init__(self, data_dir: Path, *extra_args: str, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 30.0, *, headers: dict[str, str] | None = None) -> ServerProcess:
        """Launch and wait for GetNewSession to answer (sent with ``headers``: a server started
        with Network.RequiredAuthorization and no bypass needs its Authorization header)."""
        self.process = self._launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.post(f"{self.url}/API/GetNewSession", json={}, headers=headers, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.output()}")

    def _launch(self) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "swarmkeeper", "serve", "--port", str(self.port), "--data_dir",
                str(self.data_dir)]
        for module in DUMMY_TYPES:
            args += ["--backend_types", module]
        with self.log_path.open("ab") as log:
            return subprocess.Popen([*args, *self.extra_args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def refused(self, timeout: float = 30.0) -> int:
        """Launch a server that must refuse to start: its exit code (TimeoutExpired if it hangs)."""
        self.process = self._launch()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a service manager would stop it; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)
