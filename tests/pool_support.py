"""A swarmkeeper server on loopback with its ComfyUI pool on a port of its own, in front of
ComfyUI backends (fake or real), and helpers to follow a prompt's events through it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from swarmkeeper import fds
from swarmkeeper.backends.tuning import BackendTuning, ComfyTimings
from swarmkeeper.clients.comfyui import BinaryEvent, ComfyClient, ComfyEvent, ComfyEvents

__all__ = ["BinaryEvent"]  # re-exported for the test modules
from swarmkeeper.config import ServerSettings
from swarmkeeper.files import write_atomic
from swarmkeeper.services import Services
from tests.ports import free_port
from tests.servers import APIClient, on_loopback, test_config

TIMINGS = ComfyTimings(timeout=20.0, monitor_interval=0.5)
DONE = ("execution_success", "execution_error", "execution_interrupted")


@dataclass
class PoolServer:
    url: str
    comfy_url: str
    api: APIClient
    backend_ids: list[int]

    @property
    def services(self) -> Services:
        assert self.api.services is not None
        return self.api.services

    def comfy(self, **headers: str) -> ComfyClient:
        return ComfyClient(self.comfy_url, headers=headers, timeout=60)


def write_backends_settings(data_dir: Path, **backends: Any) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = ServerSettings(backends=dataclasses.replace(ServerSettings().backends, **backends))
    write_atomic(data_dir / "Settings.fds", fds.dumps(settings.to_fds()))


@contextlib.asynccontextmanager
async def pool_server(data_dir: Path, backend_urls: list[str], *, over_queue: int = 1,
                      **backends: Any) -> AsyncIterator[PoolServer]:
    """The server, one ``comfyui_api`` backend per URL (all running), the pool on its own port."""
    write_backends_settings(data_dir, MaxBackendInitAttempts=0, **backends)
    port = free_port()
    async with on_loopback(test_config(data_dir, comfy_port=port)) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        api = APIClient(http, server.services)
        server.services.manager.services.tuning = BackendTuning(comfy=TIMINGS)
        ids = []
        for url in backend_urls:
            backend_id = int((await api.ok("AddNewBackend", type_id="comfyui_api"))["id"])
            await api.ok("EditBackend", backend_id=backend_id, title=f"comfy {backend_id}",
                         settings={"Address": url, "OverQueue": over_queue})
            ids.append(backend_id)
        for backend_id in ids:
            await api.wait_status(backend_id, "running", timeout=30)
        yield PoolServer(server.url, f"http://127.0.0.1:{port}", api, ids)


def kind_of(event: ComfyEvent) -> str:
    return f"binary{event.event_type}" if isinstance(event, BinaryEvent) else event["type"]


def prompt_of(event: ComfyEvent) -> str | None:
    if isinstance(event, BinaryEvent):
        return event.metadata.get("prompt_id")
    data = event.get("data")
    return data.get("prompt_id") if isinstance(data, dict) else None


def is_done_marker(event: ComfyEvent) -> bool:
    return (not isinstance(event, BinaryEvent) and event["type"] == "executing"
            and event["data"].get("node") is None)


async def events_until_done(events: ComfyEvents, prompt_ids: set[str], timeout: float = 60) -> list[ComfyEvent]:
    """Every event until each of the prompts has sent its done marker."""
    seen: list[ComfyEvent] = []
    left = set(prompt_ids)
    async with asyncio.timeout(timeout):
        while left:
            event = await events.recv()
            seen.append(event)
            if is_done_marker(event):
                left.discard(event["data"].get("prompt_id"))  # type: ignore[index]
    return seen


def terminal_events(events: list[ComfyEvent]) -> dict[str, list[str]]:
    """The terminal event types each prompt got."""
    found: dict[str, list[str]] = {}
    for event in events:
        if not isinstance(event, BinaryEvent) and event["type"] in DONE:
            found.setdefault(event["data"]["prompt_id"], []).append(event["type"])
    return found
