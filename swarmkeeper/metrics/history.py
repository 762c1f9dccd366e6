"""The farm's recent past: images finished per backend and pool-wide, and the deepest queue seen,
in fixed time buckets (see farm.py for what the page and /metrics make of them)."""

from __future__ import annotations

import time
from collections.abc import Callable

#: The pool's queue now: generations accepted and not finished (waiting for a slot, in a
#: backend's queue, or running). Given by the dispatch feature once its pool exists.
QueueDepth = Callable[[], int]


class Buckets:
    """Counts per time bucket, the last ``size`` buckets kept (older ones dropped as time moves)."""

    def __init__(self, seconds: float, size: int) -> None:
        self.seconds = seconds
        self.size = size
        self._counts: dict[int, int] = {}

    def _index(self, now: float) -> int:
        return int(now // self.seconds)

    def add(self, now: float, amount: int = 1) -> None:
        index = self._index(now)
        self._counts[index] = self._counts.get(index, 0) + amount
        self._trim(index)

    def keep_max(self, now: float, value: int) -> None:
        index = self._index(now)
        self._counts[index] = max(self._counts.get(index, 0), value)
        self._trim(index)

    def _trim(self, newest: int) -> None:
        if len(self._counts) > self.size:
            for index in [index for index in self._counts if index <= newest - self.size]:
                del self._counts[index]

    def series(self, now: float) -> list[int]:
        """The last ``size`` buckets, oldest first; the last one is the bucket ``now`` is in."""
        newest = self._index(now)
        return [self._counts.get(index, 0) for index in range(newest - self.size + 1, newest + 1)]


class FarmHistory:
    def __init__(self, bucket_seconds: float = 60.0, buckets: int = 60, clock: Callable[[], float] = time.time) -> None:
        self.bucket_seconds = bucket_seconds
        self.buckets = buckets
        self.clock = clock
        self.images = Buckets(bucket_seconds, buckets)
        self.queue = Buckets(bucket_seconds, buckets)
        self.per_backend: dict[int, Buckets] = {}
        #: Images finished per backend since the server started (``swarmkeeper_backend_images``).
        self.totals: dict[int, int] = {}
        self.queue_depth: QueueDepth | None = None

    def image_done(self, backend_id: int | None) -> None:
        """A generation finished with an image (outcome ``success``) on this backend."""
        now = self.clock()
        self.images.add(now)
        if backend_id is None:
            return
        self.per_backend.setdefault(backend_id, Buckets(self.bucket_seconds, self.buckets)).add(now)
        self.totals[backend_id] = self.totals.get(backend_id, 0) + 1

    def sample_queue(self) -> int:
        """Note the queue now (its deepest per bucket is kept); returns it."""
        depth = self.queue_depth() if self.queue_depth is not None else 0
        self.queue.keep_max(self.clock(), depth)
        return depth

    def backend_series(self, backend_id: int, now: float) -> list[int]:
        buckets = self.per_backend.get(backend_id)
        return buckets.series(now) if buckets is not None else [0] * self.buckets
