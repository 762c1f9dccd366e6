"""The backends with a free slot (``select.has_free_slot``), in id order, kept up to date from the
registry's changes: a claim, a release, a status change, an edit, an add or a delete moves only
the backend it touched, so reading the set costs what changed since the last read, not what is
registered."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.dispatch.select import has_free_slot


class FreeBackends:
    def __init__(self, registry: BackendRegistry) -> None:
        self._registry = registry
        self._changes = registry.changes()
        #: Parallel lists, in id order: the ids (as they were when added here) and their records.
        self._ids: list[int] = []
        self._records: list[BackendRecord] = []
        #: Each held record's id as it was when added (a re-keyed record is found by its old one).
        self._held: dict[BackendRecord, int] = {}

    def records(self) -> Sequence[BackendRecord]:
        """Every registered backend with a free slot now, in id order (valid until the next call)."""
        changed = self._changes.take()
        if changed:
            for record in changed:
                self._drop(record)
            for record in changed:
                if self._registry.get(record.id) is record and has_free_slot(record):
                    self._add(record)
        return self._records

    def _drop(self, record: BackendRecord) -> None:
        old = self._held.pop(record, None)
        if old is None:
            return
        index = bisect.bisect_left(self._ids, old)
        del self._ids[index], self._records[index]

    def _add(self, record: BackendRecord) -> None:
        backend_id = record.id
        index = bisect.bisect_left(self._ids, backend_id)
        self._ids.insert(index, backend_id)
        self._records.insert(index, record)
        self._held[record] = backend_id
