"""A non-real Swarm-API child: stands for one running backend of the remote server.

Its parent spawns it, links it (:meth:`SwarmChild.link`) and keeps it up to date on every refresh;
the child holds its own session on the remote, as SwarmUI's children do. What the scheduler
needs is here: ``remote_url``, ``remote_id``, ``remote_type`` and ``client`` (the session-bearing
:class:`SwarmClient`). Dispatch sends it prompts through :meth:`SwarmChild.prompt_target`: to the
remote server's pool (``<address>/ComfyBackendDirect/``) with SwarmUI's ``X-Swarm-Backend-ID``
header naming the remote backend, so the remote server runs them there and prompts spread over a
tree of machines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.base import Backend, BackendHost
from swarmkeeper.backends.prompts import DIRECT_PATH, PIN_HEADER, NoPrompts, PromptTarget
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.swarm_remote import RemoteBackend
from swarmkeeper.backends.swarm_settings import Connection, SwarmSettings
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.swarm import SwarmAuthRefused, SwarmClient, SwarmError, SwarmProtocolError, SwarmUnreachable
from swarmkeeper.exceptions import BackendConfigError
from swarmkeeper.types import JSONObject


@dataclass(frozen=True)
class RemoteLink:
    """What a child stands for: a backend of the server at ``connection.address``."""

    connection: Connection
    server_id: str
    remote: RemoteBackend


def lost_status(error: SwarmError, allow_idle: bool) -> BackendStatus:
    """With AllowIdle, ``idle`` while the remote does not answer as a SwarmUI (down, or a proxy's
    error page while it restarts); a refusal (Authorization, a route error) is always an error."""
    if allow_idle and isinstance(error, (SwarmUnreachable, SwarmProtocolError)):
        return BackendStatus.IDLE
    return BackendStatus.ERRORED


class SwarmChild(Backend[SwarmSettings]):
    def __init__(self, host: BackendHost[SwarmSettings]) -> None:
        super().__init__(host)
        self.linked: RemoteLink | None = None
        self.client: SwarmClient | None = None
        self._models: Mapping[str, Sequence[str]] = {}
        #: True while the status only mirrors the parent losing its remote.
        self.mirrored = False
        #: The remote pool's client and the target using it, for this connection and remote id.
        self._pool: tuple[Connection, int, PromptTarget, ComfyClient] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # --- what the parent tells it ---

    def link(self, link: RemoteLink, models: Mapping[str, Sequence[str]]) -> None:
        """Called by the parent right after spawning (before init runs)."""
        self.linked = link
        self.update(link.remote, models, link.server_id)

    def update(self, remote: RemoteBackend, models: Mapping[str, Sequence[str]], server_id: str) -> None:
        """The remote backend as the parent's latest refresh saw it (running), on the remote
        server of that id (a new one after the remote restarted)."""
        if self.linked is not None and (remote, server_id) != (self.linked.remote, self.linked.server_id):
            self.linked = RemoteLink(self.linked.connection, server_id, remote)
        if models != self._models:
            self._models = models
        self.max_usages = remote.max_usages
        self.can_load_models = remote.can_load_models
        self.current_model = remote.current_model
        if self.mirrored or self.host.status in (BackendStatus.IDLE, BackendStatus.ERRORED):
            self.mirrored = False  # the parent just reached the remote: this backend is usable again
            if self.client is not None:
                self.host.set_status(BackendStatus.RUNNING, "")

    def mirror(self, status: BackendStatus, reason: str) -> None:
        """The parent lost its remote: so did this child."""
        if self.host.status in (BackendStatus.RUNNING, BackendStatus.IDLE, BackendStatus.ERRORED):
            self.mirrored = True
            self.host.set_status(status, reason)

    # --- what dispatch uses ---

    @property
    def remote(self) -> RemoteBackend:
        if self.linked is None:
            raise BackendConfigError("No loaded remote backend.")
        return self.linked.remote

    @property
    def remote_url(self) -> str:
        return self.linked.connection.address if self.linked else ""

    @property
    def remote_id(self) -> int:
        return self.remote.id

    @property
    def remote_type(self) -> str:
        return self.remote.type

    @property
    def features(self) -> frozenset[str]:
        return self.linked.remote.features if self.linked else frozenset()

    @property
    def models(self) -> Mapping[str, Sequence[str]]:
        return self._models

    def prompt_target(self) -> PromptTarget | NoPrompts:
        """The remote server's pool, pinned to the remote backend; what it runs is asked of that pool
        (``node_list`` None)."""
        link = self.linked
        if link is None:
            return NoPrompts("No loaded remote backend.")
        if self.client is None:  # not initialised, or shut down: no client to close later is opened
            return NoPrompts("This remote backend is not connected.")
        pool = self._pool
        if pool is None or pool[0] != link.connection or pool[1] != link.remote.id:
            pool = self._open_pool(link.connection, link.remote.id)
        return pool[2]

    def _open_pool(self, connection: Connection, remote_id: int) -> tuple[Connection, int, PromptTarget, ComfyClient]:
        headers = {**connection.headers, PIN_HEADER: str(remote_id)}
        client = ComfyClient(connection.address + DIRECT_PATH, headers=headers, timeout=connection.timeout)
        target = PromptTarget(f"{self.host.id}@{connection.address}#{remote_id}", client.address.url,
                              lambda: client, None, remote=True)
        self._close_pool()
        pool = (connection, remote_id, target, client)
        object.__setattr__(self, "_pool", pool)  # a cache: not a change the API shows
        return pool

    def _close_pool(self) -> None:
        if self._pool is not None:
            task = asyncio.get_running_loop().create_task(self._pool[3].aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            object.__setattr__(self, "_pool", None)

    # --- Backend ---

    async def init(self) -> None:
        link = self.linked
        if link is None:
            raise BackendConfigError("No loaded remote backend.")
        self.host.set_status(BackendStatus.LOADING, f"Connecting to remote backend #{link.remote.id} at "
                                                    f"{link.connection.address}...")
        if self.client is None:
            self.client = link.connection.client()
        try:
            await self.client.new_session(timeout=link.connection.timeout)
        except SwarmError as error:
            status = lost_status(error, self.settings.AllowIdle)
            if isinstance(error, SwarmAuthRefused):
                status = BackendStatus.ERRORED
            self.host.set_status(status, f"Cannot open a session on {link.connection.address}: {error.message}")
            return
        self.mirrored = False
        self.host.set_status(BackendStatus.RUNNING, "")

    async def shutdown(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()
        self._close_pool()
        if self._closing:
            await asyncio.gather(*self._closing)

    async def call(self, route: str, /, **params: Any) -> JSONObject:
        """Call a route on the remote with this child's session (re-made if the remote forgot it)."""
        if self.client is None or self.linked is None:
            raise SwarmError("This remote backend is not connected.")
        return await self.client.call(route, timeout=self.linked.connection.timeout, **params)

    async def free_memory(self, system_ram: bool) -> bool:
        """SwarmUI's forwarding: FreeBackendMemory on the remote, for the remote id only."""
        answer = await self.call("FreeBackendMemory", system_ram=system_ram, backend=str(self.remote_id))
        return answer.get("result") is True

    async def load_model(self, model: str) -> bool:
        """SelectModel on the remote, for the remote id only; True if it loaded."""
        answer = await self.call("SelectModel", model=model, backendId=str(self.remote_id))
        if answer.get("success") is not True:
            return False
        self.current_model = model
        return True

    def extra_fields(self, full_data: bool) -> JSONObject:
        if not full_data or self.linked is None:
            return {}
        remote = self.linked.remote
        return {"remote_address": self.linked.connection.address, "remote_server_id": self.linked.server_id,
                "remote_id": remote.id, "remote_type": remote.type,
                "swarm_chain": [self.linked.server_id, *remote.chain]}
