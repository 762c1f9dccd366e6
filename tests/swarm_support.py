"""Helpers for the Swarm-API backend tests: servers with the test backend types, adding backends,
and waiting for a server's ListBackends to show what a test expects."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from swarmkeeper.config import ServerConfig
from swarmkeeper.services import Services
from tests.servers import DUMMY_TYPES, APIClient, on_loopback, test_config

TYPES = (*DUMMY_TYPES, "tests.model_backend")
Listing = dict[str, dict[str, Any]]


def swarm_config(data_dir: Path, **overrides: Any) -> ServerConfig:
    return test_config(data_dir, backend_type_modules=TYPES, **overrides)


@dataclass
class Server:
    """A running server and a session on it."""

    url: str
    api: APIClient

    @property
    def services(self) -> Services:
        assert self.api.services is not None
        return self.api.services


@contextlib.asynccontextmanager
async def loopback_server(data_dir: Path) -> AsyncIterator[Server]:
    """A swarmkeeper server on a real loopback socket, in this process."""
    async with on_loopback(swarm_config(data_dir)) as running, \
            httpx.AsyncClient(base_url=running.url, timeout=30) as http:
        yield Server(running.url, APIClient(http, running.services))


@contextlib.asynccontextmanager
async def api_at(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[APIClient]:
    """A session on a server running elsewhere (a ServerProcess)."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        yield APIClient(http)


async def add_backend(api: APIClient, type_id: str, title: str = "", **settings: Any) -> int:
    added = await api.ok("AddNewBackend", type_id=type_id)
    await api.ok("EditBackend", backend_id=added["id"], title=title, settings=settings)
    return int(added["id"])


async def add_swarm(api: APIClient, address: str, title: str = "", **settings: Any) -> int:
    return await add_backend(api, "swarmswarmbackend", title, Address=address, **settings)


async def listing(api: APIClient) -> Listing:
    return await api.ok("ListBackends", nonreal=True, full_data=True)


def children(entries: Listing, parent_id: int) -> list[dict[str, Any]]:
    return [entry for entry in entries.values() if entry.get("parent_id") == parent_id]


async def wait_listing(api: APIClient, check: Callable[[Listing], bool], what: str,
                       timeout: float = 30.0) -> Listing:
    """Poll ListBackends (nonreal, full_data) until ``check`` holds."""
    deadline = time.monotonic() + timeout
    entries: Listing = {}
    while time.monotonic() < deadline:
        entries = await listing(api)
        if check(entries):
            return entries
        await asyncio.sleep(0.1)
    raise AssertionError(f"never saw {what}: {entries}")


async def wait_children(api: APIClient, parent_id: int, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Wait until the parent has exactly ``count`` children, all of them running."""
    def ready(entries: Listing) -> bool:
        found = children(entries, parent_id)
        return len(found) == count and all(entry["status"] == "running" for entry in found)

    return children(await wait_listing(api, ready, f"{count} running children of #{parent_id}", timeout), parent_id)


async def wait_parent(api: APIClient, parent_id: int, status: str, words: str = "",
                      timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the backend has the status, and a reason holding ``words``."""
    def ready(entries: Listing) -> bool:
        entry = entries.get(str(parent_id), {})
        return entry.get("status") == status and words in entry.get("status_reason", "")

    return (await wait_listing(api, ready, f"#{parent_id} {status} ({words})", timeout))[str(parent_id)]
