"""``swarmkeeper_backend_images`` in /metrics: the farm history's totals (api/farm_view.py draws the
same history for the web page's farm view)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.metrics.history import FarmHistory


class FarmCollector:
    """``swarmkeeper_backend_images``: images finished per backend since the server started."""

    def __init__(self, registry: BackendRegistry, history: FarmHistory) -> None:
        self.registry = registry
        self.history = history

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        images = CounterMetricFamily("swarmkeeper_backend_images", "Generations finished with success on the "
                                     "backend since the server started (the farm view's images).",
                                     labels=["backend", "type"])
        for record in self.registry.all():
            images.add_metric([str(record.id), record.type.id], self.history.totals.get(record.id, 0))
        yield images
