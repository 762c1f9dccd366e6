"""A registry entry: one backend instance plus the state the registry keeps for it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from swarmkeeper.backends.base import Backend, BackendServices, BackendType
from swarmkeeper.backends.status import BackendStatus
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


@dataclass(eq=False)
class BackendRecord:
    """What the registry knows of one backend. Implements :class:`BackendHost` for its backend."""

    id: BackendId
    type: BackendType[Any]
    settings: Any
    services: BackendServices
    pool: ChildPool
    on_change: Callable[[BackendRecord], None]
    title: str = ""
    enabled: bool = True
    real: bool = True
    parent: BackendRecord | None = None
    #: A non-real control instance (see BackendHost.control).
    control: bool = False

    status: BackendStatus = BackendStatus.WAITING
    #: Why the status is what it is, in words a user can act on ("" when running).
    status_reason: str = "Waiting to load..."
    #: In-memory edit counter: +1 per successful EditBackend; resets on every server start.
    modcount: int = 0
    #: Active claims (generations in flight).
    usages: int = 0
    #: Of those, how many wait in the backend's own queue (dispatched, not started yet).
    jobs_queued: int = 0
    #: Monotonic time of the last claim or release, None if never used.
    last_used: float | None = None
    init_attempts: int = 0
    #: Excluded from new work while a shutdown or toggle is under way.
    shutdown_reserved: bool = False
    #: Set while a model load holds the backend (it counts as saturated).
    reserve_model_load: bool = False
    #: Exclusive holds that keep the scheduler off this backend.
    reservations: int = 0
    removed: bool = False
    backend: Backend[Any] = field(init=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    init_task: asyncio.Task[None] | None = field(default=None, init=False)
    #: Bumped by every schedule_init, so a stale queue entry can tell it is stale.
    init_generation: int = field(default=0, init=False)

    #: The status last counted as a transition (a change of reason alone is no transition).
    counted_status: BackendStatus | None = field(default=None, init=False)

    #: The :class:`ChangeClock` tick of the last change to this entry or its backend (any attribute
    #: assignment), so views of it can be cached and rebuilt only when it changed.
    version: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.backend = self.type.factory(self)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "version":
            object.__setattr__(self, "version", ChangeClock.tick())

    def changed(self) -> None:
        """Note a change the record cannot see (its backend's own state)."""
        self.version = ChangeClock.tick()

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
