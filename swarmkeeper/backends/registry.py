"""The backend registry: every registered backend by id, id allocation, and claims.

No I/O and no locks: everything runs on one event loop, and each method finishes before
another can start. Persistence, init scheduling and the API's operations live elsewhere
(store, lifecycle, manager).

An index over the records (dispatch's backends with a free slot, its node lists) stays current
through a :class:`Changes` from :meth:`BackendRegistry.changes`: the records changed, added or
removed since it was last read, so keeping the index costs what changed, not what is registered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.types import BackendId


class Changes:
    """The records changed (any field, or added, or removed) since the last :meth:`take`."""

    def __init__(self) -> None:
        self._changed: set[BackendRecord] = set()

    def note(self, record: BackendRecord) -> None:
        self._changed.add(record)

    def take(self) -> set[BackendRecord]:
        """The records changed since the last call (each once), and start afresh."""
        changed, self._changed = self._changed, set()
        return changed


class BackendRegistry:
    """Backends by id. Ids are never handed out twice within a process: real ids count up
    from 0, non-real ones down from -1, and any id ever seen (loaded, re-keyed to, or kept
    for an unknown-type entry of the file) is skipped."""

    def __init__(self) -> None:
        self._records: dict[BackendId, BackendRecord] = {}
        self._sorted: list[BackendRecord] | None = None
        self._seen: set[BackendId] = set()
        self._next_real = 0
        self._next_nonreal = -1
        self._released = asyncio.Event()
        self._changes: list[Changes] = []

    # --- following changes ---

    def changes(self) -> Changes:
        """A new follower of every change to the records, starting with every record held now."""
        changes = Changes()
        for record in self._records.values():
            changes.note(record)
        self._changes.append(changes)
        return changes

    def _note(self, record: BackendRecord) -> None:
        for changes in self._changes:
            changes.note(record)

    # --- ids ---

    def reserve_id(self, backend_id: BackendId) -> None:
        """Mark an id as taken (loaded from the file, or kept for an entry we cannot load)."""
        self._seen.add(backend_id)
        if backend_id >= self._next_real:
            self._next_real = backend_id + 1

    def new_real_id(self) -> BackendId:
        while self._next_real in self._seen:
            self._next_real += 1
        backend_id = self._next_real
        self._seen.add(backend_id)
        self._next_real += 1
        return backend_id

    def release_id(self, backend_id: BackendId) -> None:
        """Give back an id from :meth:`new_real_id` that was never used (its add was refused)."""
        if backend_id in self._records:
            return
        self._seen.discard(backend_id)
        if backend_id == self._next_real - 1:
            self._next_real = backend_id

    def new_nonreal_id(self) -> BackendId:
        while self._next_nonreal in self._seen:
            self._next_nonreal -= 1
        backend_id = self._next_nonreal
        self._seen.add(backend_id)
        self._next_nonreal -= 1
        return backend_id

    def id_taken(self, backend_id: BackendId) -> bool:
        """In use now (the test EditBackend's new_id must pass)."""
        return backend_id in self._records

    # --- membership ---

    def add(self, record: BackendRecord) -> None:
        if record.id in self._records:
            raise ValueError(f"Backend ID {record.id} is already in use.")
        self._seen.add(record.id)
        self._records[record.id] = record
        self._sorted = None
        record.watch(self._note)
        self._note(record)

    def remove(self, backend_id: BackendId) -> BackendRecord | None:
        record = self._records.pop(backend_id, None)
        if record is not None:
            record.removed = True
            record.watch(None)
            self._note(record)
            self._sorted = None
        return record

    def rekey(self, record: BackendRecord, new_id: BackendId) -> None:
        """Move a backend to another id (how users reorder priority)."""
        if new_id in self._records:
            raise ValueError(f"Backend ID {new_id} is already in use.")
        del self._records[record.id]
        record.id = new_id
        self.add(record)

    def get(self, backend_id: BackendId) -> BackendRecord | None:
        return self._records.get(backend_id)

    def all(self) -> list[BackendRecord]:
        """Every backend, non-real ones included, in ascending id order."""
        if self._sorted is None:
            self._sorted = sorted(self._records.values(), key=lambda record: record.id)
        return self._sorted

    def __iter__(self) -> Iterator[BackendRecord]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._records)

    def children_of(self, parent: BackendRecord) -> list[BackendRecord]:
        return [record for record in self.all() if record.parent is parent]

    # --- claims ---

    def claim(self, record: BackendRecord) -> None:
        """Take one of the backend's slots for a generation."""
        record.usages += 1
        record.touch()

    def release(self, record: BackendRecord) -> None:
        record.usages -= 1
        record.touch()
        self.notify()

    def notify(self) -> None:
        """Wake everything waiting for a slot to free up."""
        self._released.set()
        self._released = asyncio.Event()

    async def wait_unsaturated(self, record: BackendRecord, stop: asyncio.Event | None = None) -> None:
        """Wait while every slot of the backend is busy (SwarmUI polls every 0.5 s; we are woken
        by each release, and still look every 0.5 s for changes that send no signal)."""
        while record.saturated and record.max_usages > 0 and not (stop and stop.is_set()):
            released = self._released
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await released.wait()
