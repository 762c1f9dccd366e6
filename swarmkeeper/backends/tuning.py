"""How long backends wait, and how their processes restart: SwarmUI's values, which tests shorten
(BackendServices.tuning, ServerConfig.tuning). Imports no backend type."""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmkeeper.process.policy import RestartPolicy


@dataclass(frozen=True)
class ComfyTimings:
    """How long ComfyUI backends wait (SwarmUI's values by default)."""

    #: Seconds any one request may take (SwarmUI: 1 minute for object_info and the idle probe).
    timeout: float = 60.0
    #: Seconds between two health checks (``GET /features``) of a by-URL backend.
    monitor_interval: float = 5.0
    #: Seconds between two reads of ``/system_stats`` (the devices) while the backend runs.
    devices_interval: float = 2.0


@dataclass(frozen=True)
class BackendTuning:
    """How long backends wait, and how their processes restart and stop: SwarmUI's values unless
    a test shortens them (``ServerConfig.tuning``)."""

    comfy: ComfyTimings = field(default_factory=ComfyTimings)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
