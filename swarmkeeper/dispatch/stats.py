"""Counts of dispatch for GetCurrentStatus and /metrics.

GetCurrentStatus counts a caller's own generations, as SwarmUI counts a session's: a session sees
the work it started (the generation routes); a caller with no session (an API key alone) sees the
work that belongs to no session, which is where every pool prompt is (ComfyUI clients have no
SwarmUI session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric

from swarmkeeper.dispatch.pool.jobs import ACTIVE, JobState

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool


def session_stats(pool: Pool) -> Callable[[Any], dict[str, int]]:
    """The four counts of GetCurrentStatus for a session."""

    def counts(session: Any) -> dict[str, int]:
        owner = getattr(session, "id", None)
        jobs = [job for job in pool.jobs.values() if job.live and job.session == owner]
        return {
            "waiting_gens": len(jobs),
            "loading_models": sum(1 for job in jobs if job.state in ACTIVE and job.loads_model),
            "waiting_backends": sum(1 for job in jobs if job.state is JobState.QUEUED),
            "live_gens": sum(1 for job in jobs if job.state is JobState.RUNNING),
        }

    return counts


class DispatchCollector:
    """Scrape-time gauges: jobs queued per backend, and requests waiting for one."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily("swarmkeeper_backend_jobs_queued", "Generations sent to the backend that wait in "
                                   "its own queue (not started yet).", labels=["backend", "type"])
        for record in self.pool.registry.all():
            queued.add_metric([str(record.id), record.type.id], record.jobs_queued)
        yield queued
        waiting = GaugeMetricFamily("swarmkeeper_dispatch_waiting", "Generations waiting for a backend slot.")
        waiting.add_metric([], len(self.pool.scheduler.pending))
        yield waiting
        live = GaugeMetricFamily("swarmkeeper_dispatch_live", "Pool prompts and generations accepted and not "
                                 "finished (the pool's queue_remaining).")
        live.add_metric([], self.pool.remaining)
        yield live
