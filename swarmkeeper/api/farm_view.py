"""The farm view's snapshot (the push stream's ``farm`` event, web/stream.py): per backend,
generations running and waiting, images finished per minute over the last hour, VRAM in use and the
model loaded; for the pool, its queue and throughput over the same hour.

``services.metrics.farm`` (a :class:`~swarmkeeper.metrics.history.FarmHistory`) keeps the counts
that need a past (images finished per backend and pool-wide, the deepest queue seen), in fixed
time buckets (a minute each, an hour of them by default); everything else is read from the
registry when a snapshot is made. The same numbers are in /metrics: ``swarmkeeper_backend_images``
(this history's totals, metrics/farm.py), ``swarmkeeper_backend_jobs_in_flight`` and
``swarmkeeper_backend_jobs_queued`` (running = in flight - queued), ``swarmkeeper_dispatch_live``
(the queue) and the VRAM gauges.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.metrics.history import FarmHistory
from swarmkeeper.types import JSONObject


def recent(series: list[int]) -> list[int]:
    """A series without its leading zeros (the page pads it back to ``buckets``): an idle backend's
    hour costs a few bytes a second instead of sixty numbers."""
    for index, count in enumerate(series):
        if count:
            return series[index:]
    return []


@dataclass(frozen=True)
class BackendView:
    """One backend as the farm view draws it."""

    record: BackendRecord

    def describe(self, history: FarmHistory, now: float) -> JSONObject:
        record = self.record
        devices = getattr(record.backend, "devices", ())
        return {"id": record.id, "title": record.title or record.type.name, "type": record.type.id,
                "status": str(record.status), "running": max(0, record.usages - record.jobs_queued),
                "waiting": record.jobs_queued, "max_usages": record.max_usages,
                "model": record.backend.current_model, "images": recent(history.backend_series(record.id, now))
                if record.id in history.per_backend else [],
                "images_total": history.totals.get(record.id, 0),
                "vram_used": sum(device.vram_used for device in devices),
                "vram_total": sum(device.vram_total for device in devices),
                "devices": [device.name for device in devices]}


def farm_snapshot(registry: BackendRegistry, history: FarmHistory) -> JSONObject:
    """What the farm view shows now (the ``farm`` event of the push stream). Series are counts per
    bucket, oldest first, ending with the bucket now fills; a backend's without its leading zeros."""
    now = history.clock()
    queue = history.sample_queue()
    backends = [BackendView(record).describe(history, now) for record in registry.all() if record.real]
    return {"time": now, "bucket_seconds": history.bucket_seconds, "buckets": history.buckets,
            "pool": {"queue": queue, "running": sum(entry["running"] for entry in backends),
                     "waiting_in_backends": sum(entry["waiting"] for entry in backends),
                     "images": history.images.series(now), "queue_history": history.queue.series(now),
                     "images_total": sum(history.totals.values())},
            "backends": backends}
