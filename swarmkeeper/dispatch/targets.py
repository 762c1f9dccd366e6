"""How the pool reaches a backend, and what it knows the backend can run.

- A ComfyUI backend (both types) is reached through its own ``client`` (its ``api_url``); what it
  runs is its ``object_info``, read at init.
- A Swarm-API child stands for a backend of another server: prompts go to that server's pool
  (``<address>/ComfyBackendDirect/``) with SwarmUI's ``X-Swarm-Backend-ID`` header naming the
  remote backend, so the remote server runs them there and prompts spread over a tree of
  machines. What it runs is the remote pool's ``object_info`` for that backend, asked for in the
  background and kept for a minute.
- Any other backend (a Swarm-API parent, other types) runs no ComfyUI prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.comfyui_common import ComfyUIBackend
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.swarm_child import SwarmChild
from swarmkeeper.backends.swarm_parent import SwarmParent
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.errors import ComfyError, ComfyUnreachable
from swarmkeeper.dispatch.pool.validate import as_mapping, combo_choices, input_specs
from swarmkeeper.dispatch.requests import Refusal

log = logging.getLogger("swarmkeeper.dispatch")
#: SwarmUI's header that pins a /ComfyBackendDirect/ call to one backend id.
PIN_HEADER = "X-Swarm-Backend-ID"
DIRECT_PATH = "/ComfyBackendDirect"
#: Seconds a chained server's node list is kept before it is asked again.
REMOTE_INFO_TTL = 60.0


@dataclass(frozen=True)
class Target:
    """One backend as the pool talks to it."""

    record: BackendRecord
    #: Identifies the connection: a new one when the backend's address changes.
    key: str
    remote: bool
    _client: Callable[[], ComfyClient | None]

    def client(self) -> ComfyClient:
        client = self._client()
        if client is None:
            raise ComfyUnreachable("The backend is not connected.")
        return client


def _remote_key(child: SwarmChild) -> tuple[str, int, tuple[tuple[str, str], ...]] | None:
    if child.linked is None:
        return None
    connection = child.linked.connection
    return connection.address, child.remote_id, tuple(sorted(connection.headers.items()))


class Targets:
    def __init__(self, on_info: Callable[[], None] = lambda: None) -> None:
        self.on_info = on_info
        self._remote_clients: dict[int, tuple[Any, ComfyClient]] = {}
        self._remote_info: dict[int, tuple[Any, Mapping[str, Any], float]] = {}
        self._fetching: dict[int, asyncio.Task[None]] = {}
        self._union: tuple[tuple[int, ...], Mapping[str, Any]] = ((), {})

    # --- reaching a backend ---

    def of(self, record: BackendRecord) -> Target | None:
        backend = record.backend
        if isinstance(backend, ComfyUIBackend):
            return Target(record, f"{record.id}@{backend.api_url}", False, lambda: backend.client)
        if isinstance(backend, SwarmChild):
            client = self._remote_client(record, backend)
            if client is None:
                return None
            key = _remote_key(backend)
            return Target(record, f"{record.id}@{key[0] if key else ''}#{backend.remote_id}", True, lambda: client)
        return None

    def _remote_client(self, record: BackendRecord, child: SwarmChild) -> ComfyClient | None:
        key = _remote_key(child)
        if key is None or child.linked is None:
            return None
        known = self._remote_clients.get(record.id)
        if known is not None and known[0] == key:
            return known[1]
        connection = child.linked.connection
        headers = {**connection.headers, PIN_HEADER: str(child.remote_id)}
        client = ComfyClient(connection.address + DIRECT_PATH, headers=headers, timeout=connection.timeout)
        if known is not None:
            asyncio.get_running_loop().create_task(known[1].aclose())
        self._remote_clients[record.id] = (key, client)
        return client

    # --- what a backend runs ---

    def info_of(self, record: BackendRecord) -> Mapping[str, Any] | Refusal:
        """The backend's object_info, or why there is none."""
        backend = record.backend
        if isinstance(backend, ComfyUIBackend):
            return backend.object_info if backend.object_info else Refusal("its node list is not read yet", True)
        if isinstance(backend, SwarmParent):
            return Refusal("Control instances cannot generate.")
        if isinstance(backend, SwarmChild):
            return self._remote_info_of(record, backend)
        return Refusal(f"a {record.type.id} backend cannot run ComfyUI prompts")

    def _remote_info_of(self, record: BackendRecord, child: SwarmChild) -> Mapping[str, Any] | Refusal:
        key = _remote_key(child)
        if key is None:
            return Refusal("No loaded remote backend.")
        known = self._remote_info.get(record.id)
        fresh = known is not None and known[0] == key and time.monotonic() - known[2] < REMOTE_INFO_TTL
        if not fresh:
            self._fetch(record, child)
        if known is not None and known[0] == key:
            return known[1]
        return Refusal("the remote server's node list is not known yet", True)

    def _fetch(self, record: BackendRecord, child: SwarmChild) -> None:
        if record.id in self._fetching:
            return
        task = asyncio.get_running_loop().create_task(self._fetch_info(record, child), name=f"remote-info-{record.id}")
        self._fetching[record.id] = task
        task.add_done_callback(lambda _: self._fetching.pop(record.id, None))

    async def _fetch_info(self, record: BackendRecord, child: SwarmChild) -> None:
        key = _remote_key(child)
        client = self._remote_client(record, child)
        if key is None or client is None:
            return
        try:
            info = await client.object_info()
        except ComfyError as error:
            log.warning("Could not read the node list of remote backend #%s (%s): %s", record.id, key[0], error.message)
            return
        self._remote_info[record.id] = (key, info, time.monotonic())
        self.on_info()

    def union(self, records: Iterable[BackendRecord]) -> Mapping[str, Any]:
        """Every node class any usable backend has; a combo input accepts any backend's choices."""
        infos = [info for record in records if record.enabled and not isinstance(info := self.info_of(record), Refusal)]
        key = tuple(id(info) for info in infos)
        if key != self._union[0]:
            self._union = (key, merge_infos(infos))
        return self._union[1]

    async def aclose(self) -> None:
        for task in list(self._fetching.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, client in self._remote_clients.values():
            await client.aclose()
        self._remote_clients.clear()


def merge_infos(infos: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The union of several object_info answers (the first backend's definition of a class wins,
    with the combo choices of all of them)."""
    if len(infos) == 1:
        return infos[0]
    merged: dict[str, Any] = {}
    for number, info in enumerate(infos):
        if number and info == infos[0]:  # backends alike (the usual case): one comparison in C, no merging
            continue
        for name, node in info.items():
            if name not in merged:
                merged[name] = node
            elif merged[name] is not node:
                merged[name] = _merge_node(merged[name], node)
    return merged


def _merge_node(first: Mapping[str, Any], other: Mapping[str, Any]) -> Mapping[str, Any]:
    extra = input_specs(other)
    inputs = as_mapping(first.get("input"))
    changed: dict[str, dict[str, Any]] = {}
    for group in ("required", "optional"):
        specs = as_mapping(inputs.get(group))
        for name, spec in specs.items():
            ours, theirs = combo_choices(spec), combo_choices(extra.get(name))
            if ours is None or theirs is None or set(theirs) <= set(ours):
                continue
            union = [*ours, *(value for value in theirs if value not in ours)]
            rest = list(spec[1:]) if isinstance(spec[0], list) else [{**spec[1], "options": union}]
            changed.setdefault(group, dict(specs))[name] = [union, *rest] if isinstance(spec[0], list) else \
                [spec[0], *rest]
    if not changed:
        return first
    return {**first, "input": {**inputs, **changed}}
