"""The real Swarm-API backend: a control instance that connects to another SwarmUI or swarmkeeper
server and stands up one non-real child per running backend there (reference §10.1).

It never generates (``can_load_models`` false). Its ``features`` are the union of its children's,
and its model lists are the remote's. Unlike SwarmUI, it keeps watching the remote after init
(every second while remote backends load, every 5 s after): children come and go with the remote's
backends, a lost remote makes it ``errored`` (``idle`` with AllowIdle) with the reason, and it
comes back on its own when the remote does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from swarmkeeper.backends.base import Backend, BackendHost
from swarmkeeper.backends.prompts import NoPrompts
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.swarm_child import RemoteLink, SwarmChild, lost_status
from swarmkeeper.backends.swarm_remote import Plan, RemoteBackend, fetch_models, loop_reason, plan, read_listing
from swarmkeeper.backends.swarm_settings import TYPE_ID, Connection, SwarmSettings
from swarmkeeper.clients.swarm import SwarmAuthRefused, SwarmClient, SwarmError
from swarmkeeper.exceptions import BackendConfigError
from swarmkeeper.types import JSONObject

if TYPE_CHECKING:
    from swarmkeeper.backends.record import BackendRecord

#: Seconds between looks at the remote: while its backends load, and once they are up.
LOADING_POLL, WATCH_POLL = 1.0, 5.0
SELF_CONNECTION = "Swarm connected to itself, backend load failed."
#: SwarmUI's refusal of a generation on a control instance.
CONTROL_ONLY = NoPrompts("Control instances cannot generate.")


class SelfConnection(SwarmError):
    """The remote is this very server (A → A)."""


class SwarmLoop(SwarmError):
    """Everything the remote offers would send work back here (A → B → A)."""


class _Stale(Exception):
    """The backend was shut down (or re-initialised) while a look at the remote was under way."""


class SwarmParent(Backend[SwarmSettings]):
    can_load_models = False

    def __init__(self, host: BackendHost[SwarmSettings]) -> None:
        super().__init__(host)
        self.connection: Connection | None = None
        self.client: SwarmClient | None = None
        self.connected = False
        self.children: dict[int, BackendRecord] = {}
        self._features: frozenset[str] = frozenset()
        self._models: Mapping[str, Sequence[str]] = {}
        self._plan = Plan()
        self._refresh_models = True
        self._last_error = ""
        #: Bumped by every init and shutdown: a look that started before is stale and changes nothing.
        self._epoch = 0
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def features(self) -> frozenset[str]:
        return self._features

    def prompt_target(self) -> NoPrompts:
        """Its children run the remote's prompts; the parent runs none."""
        return CONTROL_ONLY

    @property
    def models(self) -> Mapping[str, Sequence[str]]:
        return self._models

    @property
    def remote_server_id(self) -> str | None:
        return self.client.server_id if self.client else None

    # --- Backend ---

    async def init(self) -> None:
        settings = self.settings
        if not settings.Address.strip():
            self.host.set_status(BackendStatus.DISABLED, "No address is set.")
            return
        self._forget()
        self.connection = Connection.from_settings(settings, self.host.log)
        self.client = self.connection.client()
        self.host.set_status(BackendStatus.LOADING, f"Connecting to {self.connection.address}...")
        try:
            await self._look()
        except SelfConnection as error:
            raise BackendConfigError(error.message) from None
        self._watcher = asyncio.create_task(self._watch(), name=f"swarm-watch-{self.host.id}")

    async def shutdown(self) -> None:
        self._forget()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self._remove_children(set(self.children))
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    def _forget(self) -> None:
        """Nothing learnt from an earlier connection outlives it."""
        self._epoch += 1
        self.connected = False
        self._features = frozenset()
        self._models = {}
        self._plan = Plan()
        self._refresh_models = True
        self._last_error = ""

    async def refresh_models(self) -> None:
        """TriggerRefresh: ask the remote to refresh, then read its lists again."""
        if self.client is None or not self.connected or self.connection is None:
            return
        try:
            await self.client.call("TriggerRefresh", timeout=self.connection.timeout)
        except SwarmError as error:
            self.host.log.warning("TriggerRefresh on %s failed: %s", self.connection.address, error.message)
        self._refresh_models = True
        await self._look()

    def extra_fields(self, full_data: bool) -> JSONObject:
        if not full_data or self.connection is None:
            return {}
        fields: JSONObject = {"remote_address": self.connection.address, "remote_server_id": self.remote_server_id}
        if self.connected and self.remote_server_id:
            reach = [self.remote_server_id]
            for remote in self._plan.linked.values():
                reach += [hop for hop in remote.chain if hop not in reach]
            fields["swarm_chain"] = reach
        return fields

    # --- watching the remote ---

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(LOADING_POLL if self.host.status is BackendStatus.LOADING else WATCH_POLL)
            try:
                await self._look()
            except SelfConnection as error:
                self._lost(error)  # the address now leads here: an error until the backend is edited
                return

    async def _look(self) -> None:
        """One look at the remote (a session if need be, its backends, its models if need be),
        and the status that follows. Connection trouble becomes the status, never an exception."""
        epoch = self._epoch
        async with self._lock:
            try:
                self._still(epoch)
                if not self.connected:
                    await self._connect(epoch)
                await self._refresh(epoch)
            except (SelfConnection, asyncio.CancelledError):
                raise
            except _Stale:
                return
            except SwarmError as error:
                if epoch == self._epoch:
                    self._lost(error)

    def _still(self, epoch: int) -> None:
        if epoch != self._epoch:
            raise _Stale

    async def _connect(self, epoch: int) -> None:
        assert self.client is not None and self.connection is not None
        await self.client.new_session(timeout=self.connection.timeout)
        self._still(epoch)
        self._check_not_self()
        self.connected = True
        self._refresh_models = True

    def _check_not_self(self) -> None:
        if self.client is not None and self.client.server_id == self.host.services.server_id:
            self.host.log.error("Swarm is connecting to itself as a backend. Check the address being used: %s",
                                self.client.base_url)
            raise SelfConnection(f"{SELF_CONNECTION} {self.client.base_url} is this server's own address.")

    async def _refresh(self, epoch: int) -> None:
        assert self.client is not None and self.connection is not None
        data = await self.client.call("ListBackends", timeout=self.connection.timeout, nonreal=True, full_data=True)
        self._still(epoch)
        self._check_not_self()  # the call may have made a new session with a server that restarted
        remotes, skipped = read_listing(data)
        if skipped and skipped != self._plan.skipped:
            self.host.log.warning("%s entries of the backend list of %s could not be read (no id or status); "
                                  "they are left out", skipped, self.connection.address)
        new_plan = plan(remotes, self.host.services.server_id, self.settings.AllowForwarding, skipped)
        if self._refresh_models or new_plan.loading or new_plan.linked.keys() != self._plan.linked.keys():
            await self._read_models()
            self._still(epoch)
        self._report_loops(self._plan, new_plan)
        self._plan = new_plan
        await self._reconcile(new_plan.linked, epoch)
        self._settle(new_plan)

    async def _read_models(self) -> None:
        assert self.client is not None and self.connection is not None
        fetched = await fetch_models(self.client, allow_remote=self.settings.AllowForwarding,
                                     timeout=self.connection.timeout, log=self.host.log)
        self._models = {**self._models, **fetched}
        self._refresh_models = False

    def _settle(self, current: Plan) -> None:
        self._features = current.features
        if current.loops and not current.linked:
            assert self.connection is not None
            self._lost(SwarmLoop(loop_reason(self.connection.address, current.loops, self.host.services.server_id)))
            return
        self._last_error = ""
        if current.loading:
            self.host.set_status(BackendStatus.LOADING, f"Waiting for {current.loading} remote backends to load...")
        else:
            self.host.set_status(BackendStatus.RUNNING, "")

    def _report_loops(self, previous: Plan, current: Plan) -> None:
        """Log each remote backend refused as a loop, once (not on every look)."""
        for remote_id in current.loops.keys() - previous.loops.keys():
            self.host.log.warning("Remote backend #%s of %s is not used: work sent there would come back to this "
                                  "server", remote_id, self.connection.address if self.connection else "")

    def _lost(self, error: SwarmError) -> None:
        """The remote cannot be used now: say why, here and on every child, and look again later."""
        if not isinstance(error, SwarmLoop):
            self.connected = False  # make a new session next time
        status = lost_status(error, self.settings.AllowIdle)
        if isinstance(error, (SwarmAuthRefused, SwarmLoop, SelfConnection)):
            status = BackendStatus.ERRORED
        address = self.connection.address if self.connection else self.settings.Address
        if isinstance(error, (SwarmLoop, SelfConnection)):
            reason = error.message
        else:
            reason = f"Cannot use the remote Swarm at {address}: {error.message} (trying again every {WATCH_POLL:g} s)"
        if reason != self._last_error:  # log a trouble once, not on every look
            self.host.log.error("%s", reason)
            self._last_error = reason
        self.host.set_status(status, reason)
        for child in self.children.values():
            if isinstance(child.backend, SwarmChild):
                child.backend.mirror(status, f"The remote server {address} cannot be used: {error.message}")

    # --- children ---

    def _child_title(self, remote: RemoteBackend) -> str:
        """SwarmUI's ``[Remote from <parent id>: <parent title>] <remote title>``."""
        parent_title = self.host.title or "Swarm-API-Backend"
        remote_title = remote.title or f"{remote.type} #{remote.id}"
        return f"[Remote from {self.host.id}: {parent_title}] {remote_title}"

    async def _reconcile(self, linked: Mapping[int, RemoteBackend], epoch: int) -> None:
        gone = {remote_id for remote_id, child in self.children.items() if remote_id not in linked or child.removed}
        await self._remove_children(gone)
        self._still(epoch)
        for remote_id, remote in linked.items():
            child = self.children.get(remote_id)
            if child is None:
                self._spawn(remote)
            elif isinstance(child.backend, SwarmChild):
                child.backend.update(remote, self._models, self.remote_server_id or "")

    def _spawn(self, remote: RemoteBackend) -> None:
        assert self.connection is not None
        self.host.log.info("Adding remote backend #%s (%s) of %s", remote.id, remote.type, self.connection.address)
        child = self.host.spawn_child(TYPE_ID, self.settings, self._child_title(remote))
        self.children[remote.id] = child
        if isinstance(child.backend, SwarmChild):  # linked before its init runs (it is only scheduled)
            child.backend.link(RemoteLink(self.connection, self.remote_server_id or "", remote), self._models)

    async def _remove_children(self, remote_ids: set[int]) -> None:
        for remote_id in remote_ids:
            child = self.children.pop(remote_id, None)
            if child is not None:
                self.host.log.info("Removing remote backend #%s (now backend %s)", remote_id, child.id)
                await self.host.remove_child(child)
