"""A registry entry: one backend instance plus the state the registry keeps for it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from swarmkeeper.backends.base import Backend, BackendServices, BackendType
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.tracked import Tracked
from swarmkeeper.types import BackendId


class ChildPool(Protocol):
    """Where non-real children come from (the manager)."""

    def spawn_child(self, parent: BackendRecord, type_id: str, settings: Any, title: str, *,
                    control: bool = False) -> BackendRecord: ...

    async def remove_child(self, child: BackendRecord) -> None: ...


def backend_logger(backend_id: BackendId) -> logging.Logger:
    """The logger whose lines are kept under the identifier ``backend-<id>``."""
    return logging.getLogger(f"swarmkeeper.backend.{backend_id}")


class ChangeClock:
    """Ticks on every change to any record in the process; each change's tick becomes that record's
    ``version``. A view over all records is current while the clock has not moved: one comparison,
    not one per record."""

    ticks: int = 0

    @classmethod
    def tick(cls) -> int:
        cls.ticks += 1
        return cls.ticks


class BackendRecord:
    """What the registry knows of one backend. Implements :class:`BackendHost` for its backend.

    Every field below is :class:`Tracked`: assigning it is a change the views follow (``version``
    moves); the others (type, services, pool, on_change, control, backend, lock) are set once, here.
    """

    #: The id (changes when the registry re-keys the backend).
    id = Tracked(BackendId(0))
    title = Tracked("")
    enabled = Tracked(True)
    #: False for a non-real backend (spawned by a parent, never saved).
    real = Tracked(True)
    parent: Tracked[BackendRecord | None] = Tracked(None)
    #: The backend's settings (a frozen dataclass of its type's settings class).
    settings: Tracked[Any] = Tracked(None)
    status = Tracked(BackendStatus.WAITING)
    #: Why the status is what it is, in words a user can act on ("" when running).
    status_reason = Tracked("Waiting to load...")
    #: In-memory edit counter: +1 per successful EditBackend; resets on every server start.
    modcount = Tracked(0)
    #: Active claims (generations in flight).
    usages = Tracked(0)
    #: Of those, how many wait in the backend's own queue (dispatched, not started yet).
    jobs_queued = Tracked(0)
    #: Monotonic time of the last claim or release, None if never used.
    last_used: Tracked[float | None] = Tracked(None)
    init_attempts = Tracked(0)
    #: Excluded from new work while a shutdown or toggle is under way.
    shutdown_reserved = Tracked(False)
    #: Set while a model load holds the backend (it counts as saturated).
    reserve_model_load = Tracked(False)
    #: Exclusive holds that keep the scheduler off this backend.
    reservations = Tracked(0)
    removed = Tracked(False)
    init_task: Tracked[asyncio.Task[None] | None] = Tracked(None)
    #: Bumped by every schedule_init, so a stale queue entry can tell it is stale.
    init_generation = Tracked(0)
    #: The status last counted as a transition (a change of reason alone is no transition).
    counted_status: Tracked[BackendStatus | None] = Tracked(None)

    def __init__(self, *, id: BackendId, type: BackendType[Any], settings: Any, services: BackendServices,
                 pool: ChildPool, on_change: Callable[[BackendRecord], None], title: str = "", enabled: bool = True,
                 real: bool = True, parent: BackendRecord | None = None, control: bool = False) -> None:
        self._version = 0
        self._watcher: Callable[[BackendRecord], None] | None = None
        self.id = id
        self._type = type
        self._services = services
        self._pool = pool
        self._on_change = on_change
        self._control = control
        self._lock = asyncio.Lock()
        self.settings = settings
        self.title = title
        self.enabled = enabled
        self.real = real
        self.parent = parent
        self._backend: Backend[Any] = type.factory(self)

    def __repr__(self) -> str:
        return f"<BackendRecord #{self.id} {self.type.id} {self.status}>"

    @property
    def version(self) -> int:
        """The :class:`ChangeClock` tick of the last change to this entry or its backend, so views
        of it can be cached and rebuilt only when it changed."""
        return self._version

    def changed(self) -> None:
        """Note a change (a Tracked field does it itself; a backend calls it through its host)."""
        self._version = ChangeClock.tick()
        if self._watcher is not None:
            self._watcher(self)

    def watch(self, watcher: Callable[[BackendRecord], None] | None) -> None:
        """Have ``watcher`` told of every change from now on (the registry, while it holds the record)."""
        self._watcher = watcher

    @property
    def type(self) -> BackendType[Any]:
        return self._type

    @property
    def services(self) -> BackendServices:
        return self._services

    @property
    def pool(self) -> ChildPool:
        return self._pool

    @property
    def on_change(self) -> Callable[[BackendRecord], None]:
        return self._on_change

    @property
    def control(self) -> bool:
        """A non-real control instance (see BackendHost.control)."""
        return self._control

    @property
    def backend(self) -> Backend[Any]:
        return self._backend

    @property
    def lock(self) -> asyncio.Lock:
        """Held while the backend is initialised or shut down."""
        return self._lock

    # --- BackendHost ---

    @property
    def log(self) -> logging.Logger:
        return backend_logger(self.id)

    def set_status(self, status: BackendStatus, reason: str = "") -> None:
        """The only writer of ``status``: records the reason and tells the listeners."""
        if status is self.status and reason == self.status_reason:
            return
        self.status = status
        self.status_reason = reason
        self.on_change(self)

    def spawn_child(self, type_id: str, settings: Any, title: str, *, control: bool = False) -> BackendRecord:
        return self.pool.spawn_child(self, type_id, settings, title, control=control)

    async def remove_child(self, child: BackendRecord) -> None:
        await self.pool.remove_child(child)

    # --- derived state ---

    @property
    def max_usages(self) -> int:
        return self.backend.max_usages

    @property
    def saturated(self) -> bool:
        """SwarmUI's rule: every slot busy (or a model load holds it) while running."""
        busy = self.usages >= self.backend.max_usages or self.reserve_model_load
        return busy and self.status is BackendStatus.RUNNING

    def touch(self) -> None:
        """Stamp the last-used time, on this backend and its parent."""
        now = time.monotonic()
        self.last_used = now
        if self.parent is not None:
            self.parent.last_used = now
