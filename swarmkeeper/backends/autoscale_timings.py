"""The autoscaling backend's timings (not settings: SwarmUI fixes them); tests shorten them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AutoscaleTimings:
    #: Seconds between two looks (a scaling decision, and pings when due).
    tick: float = 0.25
    #: Seconds between AdminTakeControl pings to each worker (SwarmUI's 30).
    ping: float = 30.0
    #: Seconds between attempts to reach a new worker at its URL.
    probe: float = 0.1
    #: Seconds each DoRetries retry allows (SwarmUI's FirstLoadRetryWaitSeconds).
    per_retry: float = 5.0
    #: Seconds what a launch left running gets to end by itself once its worker is stopped.
    grace: float = 10.0
