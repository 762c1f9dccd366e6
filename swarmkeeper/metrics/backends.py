"""Gauges of the backends, computed from the registry at scrape time (nothing to keep in step:
a deleted backend's series simply stop, a re-keyed one moves to its new id).

Per backend (real and non-real, ``backend`` = its id as ListBackends keys it): its status (one
series, 1, labelled with the current status, so a scrape stays small with many backends),
enabled, jobs in flight, max usages, init attempts as ListBackends shows them, and seconds since
last used (only once used). Per type: how many real backends are in each status (every
registered type and status, zeros included). Per device of a ComfyUI backend (its
``/system_stats``, read while it runs): VRAM total and free, and what torch holds of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from swarmkeeper.backends.base import TypeCatalog
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.status import BackendStatus

PER_BACKEND = ["backend", "type"]


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class BackendCollector:
    def __init__(self, registry: BackendRegistry, types: TypeCatalog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.types = types
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check for name clashes at registration

    def collect(self) -> Iterator[Metric]:
        records = self.registry.all()
        yield self._counts(records)
        yield from self._per_backend(records)
        yield from self._devices(records)

    def _counts(self, records: list[BackendRecord]) -> GaugeMetricFamily:
        counts = {(backend_type.id, status): 0 for backend_type in self.types for status in BackendStatus}
        for record in records:
            if record.real:
                key = (record.type.id, record.status)
                counts[key] = counts.get(key, 0) + 1
        family = _gauge("swarmkeeper_backends", "Real backends (as ListBackends lists them), by type and status.",
                        ["type", "status"])
        for (type_id, status), count in counts.items():
            family.add_metric([type_id, str(status)], count)
        return family

    def _per_backend(self, records: list[BackendRecord]) -> Iterator[GaugeMetricFamily]:
        status = _gauge("swarmkeeper_backend_status", "1, labelled with the backend's current status.",
                        [*PER_BACKEND, "status"])
        enabled = _gauge("swarmkeeper_backend_enabled", "1 if the backend is enabled.", PER_BACKEND)
        in_flight = _gauge("swarmkeeper_backend_jobs_in_flight", "Generations running on the backend (its claims).",
                           PER_BACKEND)
        max_usages = _gauge("swarmkeeper_backend_max_usages", "Generations the backend takes at once.", PER_BACKEND)
        attempts = _gauge("swarmkeeper_backend_init_attempts", "Init attempts since the last edit, toggle or "
                          "restart (ListBackends' init_attempts).", PER_BACKEND)
        idle = _gauge("swarmkeeper_backend_seconds_since_used", "Seconds since the backend was last claimed or "
                      "released (absent until first used).", PER_BACKEND)
        now = self.clock()
        for record in records:
            labels = [str(record.id), record.type.id]
            status.add_metric([*labels, str(record.status)], 1)
            enabled.add_metric(labels, 1 if record.enabled else 0)
            in_flight.add_metric(labels, record.usages)
            max_usages.add_metric(labels, record.max_usages)
            attempts.add_metric(labels, record.init_attempts)
            if record.last_used is not None:
                idle.add_metric(labels, int(now - record.last_used))
        yield from (status, enabled, in_flight, max_usages, attempts, idle)

    def _devices(self, records: list[BackendRecord]) -> Iterator[GaugeMetricFamily]:
        labels = [*PER_BACKEND, "device", "index"]
        families = {
            "vram_total": _gauge("swarmkeeper_backend_vram_total_bytes", "VRAM of the device, as the backend's "
                                 "/system_stats lists it.", labels),
            "vram_free": _gauge("swarmkeeper_backend_vram_free_bytes", "Free VRAM of the device.", labels),
            "torch_vram_total": _gauge("swarmkeeper_backend_torch_vram_total_bytes", "VRAM torch has reserved on the "
                                       "device.", labels),
            "torch_vram_free": _gauge("swarmkeeper_backend_torch_vram_free_bytes", "Of torch's reserved VRAM, what "
                                      "is free.", labels),
        }
        for record in records:
            for device in getattr(record.backend, "devices", ()):
                index = "" if device.index is None else str(device.index)
                values = [str(record.id), record.type.id, device.name, index]
                for field, family in families.items():
                    family.add_metric(values, getattr(device, field))
        yield from families.values()
