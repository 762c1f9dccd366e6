"""Prometheus metrics.

:class:`Metrics` (recorder.py) is the one object every part of the server records into: features
reach it as ``services.metrics``, the lifecycle, the manager and backend code as
``services.metrics`` of their :class:`~swarmkeeper.backends.base.BackendServices` (a backend:
``self.host.services.metrics``); both are the same object. The feature in feature.py serves it at
``GET /metrics`` and times API calls; backends.py computes the per-backend gauges at scrape time.

recorder.py imports nothing of the server, so any module (the core's included) may import it.
"""

from swarmkeeper.metrics.recorder import (
    AdoptionOutcome,
    FreeOutcome,
    LaunchOutcome,
    Metrics,
    RestartCause,
    StopCause,
)

__all__ = ["AdoptionOutcome", "FreeOutcome", "LaunchOutcome", "Metrics", "RestartCause", "StopCause"]
