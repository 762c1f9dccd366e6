"""SelectModel on a ComfyUI backend: as SwarmUI loads a model there, a tiny generation with that
model (64×64, one step, previewed rather than saved), run through the pool pinned to the backend,
so it queues behind the backend's own work and the pool records the model it now holds."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.dispatch.graph import T2IParams, text_to_image
from swarmkeeper.dispatch.pool.core import Pool
from swarmkeeper.dispatch.pool.jobs import Job

#: Longest a load may take (a first load reads the whole checkpoint).
LOAD_TIMEOUT = 600.0
FAILED = ("execution_error", "execution_interrupted", "swarmkeeper_cancelled")


def load_graph(checkpoint: str) -> dict[str, Any]:
    """The smallest generation that loads every part of the checkpoint (model, CLIP, VAE)."""
    params = T2IParams(steps=1, cfgscale=1.0, width=64, height=64, seed=random.randrange(2**31))
    graph = text_to_image(params, checkpoint)
    graph["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    return graph


def pool_loader(pool: Pool) -> Callable[[BackendRecord, str], Awaitable[bool]]:
    """What the dispatch feature gives ``Services.model_loader``."""
    async def load(record: BackendRecord, checkpoint: str) -> bool:
        return await load_through_pool(pool, record, checkpoint)
    return load


async def load_through_pool(pool: Pool, record: BackendRecord, checkpoint: str) -> bool:
    """Run the load on that backend; True when ComfyUI finished it without error."""
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def sink(job: Job, event: Any) -> None:
        if outcome.done() or not isinstance(event, dict):
            return
        if event.get("type") in FAILED:
            outcome.set_result(False)
        elif event.get("type") == "executing" and (event.get("data") or {}).get("node") is None:
            outcome.set_result(True)

    status, _ = pool.accept({"prompt": load_graph(checkpoint)}, pin=record.id, sink=sink)
    if status != 200:
        return False
    async with asyncio.timeout(LOAD_TIMEOUT):
        return await outcome
