"""Dispatch, one per server: the scheduler and the ComfyUI-compatible pool, built with the other
services (nothing runs yet) and started and stopped by the dispatch feature (feature.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.types import ASGIApp

from swarmkeeper.api.sessions import Session
from swarmkeeper.backends.demand import DemandBoard
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.config import BackendsSettings
from swarmkeeper.dispatch import idle
from swarmkeeper.dispatch.demand import demand_of
from swarmkeeper.dispatch.model_load import load_through_pool
from swarmkeeper.dispatch.pool.core import Pool
from swarmkeeper.dispatch.pool.jobs import Job
from swarmkeeper.dispatch.pool.port import PoolPort
from swarmkeeper.dispatch.requests import Policy
from swarmkeeper.dispatch.scheduler import Scheduler
from swarmkeeper.dispatch.stats import DispatchCollector, session_stats
from swarmkeeper.dispatch.targets import Targets
from swarmkeeper.events import EventHub
from swarmkeeper.limits import WireLimits
from swarmkeeper.metrics import Metrics


class Dispatch:
    """The pool and its scheduler; ``running_pool()`` is None until started and once stopped."""

    def __init__(self, registry: BackendRegistry, settings: BackendsSettings, on_stall: Callable[[], None],
                 demand: DemandBoard) -> None:
        self.registry = registry
        self.settings = settings
        self.scheduler = Scheduler(registry, lambda: Policy.of(settings), on_stall=on_stall)
        self.targets = Targets(on_info=lambda: self.scheduler.wake(full=True), registry=registry)
        self.pool = Pool(registry, self.scheduler, self.targets)
        #: Where backends (the autoscaling one) read the waiting work, once started.
        self.demand = demand
        self.port: PoolPort | None = None
        #: The app the pool's own port serves, once its lifespan has begun (503 before).
        self.app: ASGIApp | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self._running = False

    def running_pool(self) -> Pool | None:
        return self.pool if self._running else None

    def session_counts(self, session: Session | None) -> dict[str, int]:
        """GetCurrentStatus's four counts for a session (all zero while not running)."""
        if not self._running:
            return {"waiting_gens": 0, "loading_models": 0, "waiting_backends": 0, "live_gens": 0}
        return session_stats(self.pool)(session)

    async def load_model(self, record: BackendRecord, checkpoint: str) -> bool:
        """SelectModel on a ComfyUI backend: a tiny generation with that model, through the pool
        (model_load.py); False while not running."""
        return self._running and await load_through_pool(self.pool, record, checkpoint)

    def serve(self, app: ASGIApp) -> None:
        """The pool's own port serves ``app`` from now on (app.py, when the app's lifespan begins)."""
        self.app = app

    async def start(self, events: EventHub, metrics: Metrics, host: str, port: int | None,
                    wire: WireLimits) -> None:
        self._record_into(metrics)
        self.demand.source = lambda: demand_of(self.scheduler)
        self._running = True
        self.tasks = [
            asyncio.create_task(self.scheduler.run(), name="dispatch-scheduler"),
            asyncio.create_task(self._watch(events), name="dispatch-watch"),
            asyncio.create_task(idle.run(self.registry, lambda: idle.IdleLimits.of(self.settings)),
                                name="dispatch-idle"),
        ]
        if port is not None and port >= 0:
            self.port = PoolPort(lambda: self.app, host, port, wire)
            await self.port.start()

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self.port is not None:
            await self.port.stop()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pool.close()
        await self.targets.aclose()

    def _record_into(self, metrics: Metrics) -> None:
        pool = self.pool
        self.scheduler.stats.on_assign = metrics.dispatched

        def ended(job: Job, outcome: str) -> None:
            metrics.job_ended(outcome, job.backend_id)

        metrics.farm.queue_depth = lambda: pool.remaining
        pool.on_finished = ended
        metrics.add_collector(DispatchCollector(pool))

    async def _watch(self, events: EventHub) -> None:
        """Every backend change (status, settings, membership) may let a waiting request through."""
        with events.subscribe() as changes:
            while True:
                await changes.get()
                self.scheduler.wake(full=True)
