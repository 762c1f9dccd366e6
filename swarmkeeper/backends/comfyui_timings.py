"""How long ComfyUI backends wait: a leaf, so BackendServices (base.py) can carry it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComfyTimings:
    """How long ComfyUI backends wait (SwarmUI's values by default)."""

    #: Seconds any one request may take (SwarmUI: 1 minute for object_info and the idle probe).
    timeout: float = 60.0
    #: Seconds between two health checks (``GET /features``) of a by-URL backend.
    monitor_interval: float = 5.0
    #: Seconds between two reads of ``/system_stats`` (the devices) while the backend runs.
    devices_interval: float = 2.0
