"""The dispatch feature: the scheduler, the ComfyUI-compatible pool (under /ComfyBackendDirect/ and
on ``--comfy_port``), SwarmUI's generation routes, the idle memory policy, and their counts in
GetCurrentStatus, ListBackends and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from swarmkeeper.dispatch import idle
from swarmkeeper.dispatch.demand import demand_of
from swarmkeeper.dispatch.generate import routes as generation_routes
from swarmkeeper.dispatch.model_load import pool_loader
from swarmkeeper.dispatch.pool.core import Pool
from swarmkeeper.dispatch.pool.jobs import Job
from swarmkeeper.dispatch.pool.port import PoolPort
from swarmkeeper.dispatch.pool.routes import POOL_KEY, pool_routes
from swarmkeeper.dispatch.requests import Policy
from swarmkeeper.dispatch.scheduler import Scheduler
from swarmkeeper.dispatch.stats import DispatchCollector, session_stats
from swarmkeeper.dispatch.targets import DIRECT_PATH, Targets
from swarmkeeper.features import Feature

if TYPE_CHECKING:
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.dispatch")
STATE_KEY = "dispatch"
#: services.extra key under which app.py puts the ASGI app (the pool port serves it).
APP_KEY = "asgi_app"


@dataclass
class Dispatch:
    pool: Pool
    port: PoolPort | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def watch_backends(services: Services, pool: Pool) -> None:
    """Every backend change (status, settings, membership) may let a waiting request through."""
    with services.events.subscribe() as changes:
        while True:
            await changes.get()
            pool.scheduler.wake(full=True)


def restart_everything(services: Services) -> None:
    """ForceRestartOnTimeout: a stall restarts every backend (as RestartBackends force)."""
    asyncio.get_running_loop().create_task(services.manager.restart("all", force=True))


async def start(services: Services) -> None:
    scheduler = Scheduler(services.registry, lambda: Policy.of(services.settings.backends),
                          on_stall=lambda: restart_everything(services))
    targets = Targets(on_info=lambda: scheduler.wake(full=True))
    pool = Pool(services.registry, scheduler, targets)
    services.manager.services.demand.source = lambda: demand_of(scheduler)
    metrics = services.metrics
    scheduler.stats.on_assign = metrics.dispatched

    def ended(job: Job, outcome: str) -> None:
        metrics.job_ended(outcome, job.backend_id)

    metrics.farm.queue_depth = lambda: pool.remaining

    pool.on_finished = ended
    metrics.add_collector(DispatchCollector(pool))
    services.extra[POOL_KEY] = pool
    services.model_loader = pool_loader(pool)
    services.extra["session_stats"] = session_stats(pool)
    state = Dispatch(pool)
    state.tasks = [
        asyncio.create_task(scheduler.run(), name="dispatch-scheduler"),
        asyncio.create_task(watch_backends(services, pool), name="dispatch-watch"),
        asyncio.create_task(idle.run(services.registry, lambda: idle.IdleLimits.of(services.settings.backends)),
                            name="dispatch-idle"),
    ]
    services.extra[STATE_KEY] = state
    port = services.config.comfy_port
    if port is not None and port >= 0:
        state.port = PoolPort(lambda: services.extra.get(APP_KEY), services.config.host, port,
                              services.config.wire)
        await state.port.start()


async def stop(services: Services) -> None:
    state: Dispatch | None = services.extra.pop(STATE_KEY, None)
    if state is None:
        return
    if state.port is not None:
        await state.port.stop()
    for task in state.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await state.pool.close()
    await state.pool.targets.aclose()
    services.extra.pop(POOL_KEY, None)


def http_routes() -> list[BaseRoute]:
    return pool_routes(DIRECT_PATH)


DISPATCH = Feature(name="dispatch", routes=generation_routes, http_routes=http_routes, start=start, stop=stop)
