"""The dispatch feature: the scheduler, the ComfyUI-compatible pool (under /ComfyBackendDirect/ and
on ``--comfy_port``), SwarmUI's generation routes, the idle memory policy, and their counts in
GetCurrentStatus, ListBackends and /metrics. The parts themselves are built with the other
services (service.py: ``services.dispatch``); this starts and stops them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from swarmkeeper.backends.manager import BackendManager
from swarmkeeper.config import BackendsSettings
from swarmkeeper.dispatch.generate import routes as generation_routes
from swarmkeeper.dispatch.pool.routes import pool_routes
from swarmkeeper.dispatch.service import Dispatch
from swarmkeeper.dispatch.targets import DIRECT_PATH
from swarmkeeper.features import Feature

if TYPE_CHECKING:
    from swarmkeeper.services import Services


def build_dispatch(manager: BackendManager, settings: BackendsSettings) -> Dispatch:
    """The server's Dispatch (not running yet); a stall restarts every backend when
    ForceRestartOnTimeout says so (as RestartBackends force)."""

    def restart_everything() -> None:
        asyncio.get_running_loop().create_task(manager.restart("all", force=True))

    return Dispatch(manager.registry, settings, on_stall=restart_everything, demand=manager.services.demand)


async def start(services: Services) -> None:
    config = services.config
    await services.dispatch.start(services.events, services.metrics, config.host, config.comfy_port, config.wire)


async def stop(services: Services) -> None:
    await services.dispatch.stop()


def http_routes() -> list[BaseRoute]:
    return pool_routes(DIRECT_PATH)


DISPATCH = Feature(name="dispatch", routes=generation_routes, http_routes=http_routes, start=start, stop=stop)
