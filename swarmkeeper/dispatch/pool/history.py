"""``/history``: the pool's finished prompts, each entry as its backend recorded it (asked for once
and kept), with the pool's queue item and the pool's file names."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from swarmkeeper.clients.errors import ComfyError
from swarmkeeper.dispatch.pool.jobs import Job, JobState

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool

JSONObject = dict[str, Any]
#: Backend history reads at once when listing many prompts.
FETCH_CONCURRENCY = 16


async def entry(pool: Pool, job: Job) -> JSONObject | None:
    """The job's history entry, or None while it has none (queued, running, or forgotten)."""
    if job.history is not None:
        return job.history
    if job.state is not JobState.DONE or job.backend_id is None:
        return None
    link = pool.links.by_key(job.link_key)
    record = pool.backend_record(job.backend_id)
    target = link.target if link is not None else (pool.targets.of(record) if record is not None else None)
    if target is None:
        return None
    try:
        answer = await target.client().history(job.prompt_id)
    except (ComfyError, RuntimeError):
        return None
    found = answer.get(job.prompt_id)
    if not isinstance(found, dict):
        return None
    job.history = rewrite(pool, job, found)
    return job.history


def rewrite(pool: Pool, job: Job, found: JSONObject) -> JSONObject:
    """A backend's entry as the pool shows it: its queue item, its file names."""
    outputs = found.get("outputs")
    shown = dict(found)
    shown["prompt"] = job.item
    if isinstance(outputs, dict) and job.backend_id is not None:
        shown["outputs"] = {node: pool.files.rewrite(value, job.backend_id) if isinstance(value, dict) else value
                            for node, value in outputs.items()}
    return shown


async def one(pool: Pool, prompt_id: str) -> JSONObject:
    """``GET /history/{prompt_id}``: ``{id: entry}``, or ``{}``."""
    job = pool.jobs.get(prompt_id)
    found = await entry(pool, job) if job is not None else None
    return {prompt_id: found} if found is not None else {}


async def listing(pool: Pool, max_items: int | None, offset: int) -> JSONObject:
    """``GET /history``: every finished prompt, or ``max_items`` of them from ``offset`` (the last
    ones when no offset is given), oldest first."""
    finished = [job for job in pool.jobs.values() if job.state in (JobState.DONE, JobState.FAILED)]
    if max_items is not None:
        start = len(finished) - max_items if offset < 0 else offset
        finished = finished[max(start, 0):][:max(max_items, 0)]
    limit = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(job: Job) -> tuple[str, JSONObject | None]:
        async with limit:
            return job.prompt_id, await entry(pool, job)

    results = await asyncio.gather(*(fetch(job) for job in finished))
    return {prompt_id: found for prompt_id, found in results if found is not None}


async def change(pool: Pool, body: Any) -> None:
    """``POST /history``: ``{"clear": true}`` or ``{"delete": [ids]}``, on the pool and the backends."""
    if not isinstance(body, dict):
        return
    finished = [job for job in pool.jobs.values() if job.state in (JobState.DONE, JobState.FAILED)]
    if body.get("clear") is True:
        doomed = finished
    else:
        ids = {str(item) for item in body.get("delete") or [] if isinstance(item, str)}
        doomed = [job for job in finished if job.prompt_id in ids]
    for job in doomed:
        pool.jobs.pop(job.prompt_id, None)
        link = pool.links.by_key(job.link_key)
        if link is not None:
            with contextlib.suppress(ComfyError, RuntimeError):
                await link.target.client().delete_history([job.prompt_id])
