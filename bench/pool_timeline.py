"""Where the pool's overhead on one prompt appears: when each of a prompt's events reaches the client,
direct to a real ComfyUI and through the pool in front of it, alternately, in one run.

    .venv/bin/python bench/pool_timeline.py [--prompts 200] [--comfy_url http://127.0.0.1:8188]

For each event of the 64×64 model-free prompt of ``bench/pool_overhead.py`` (``status`` messages
left out), prints the median time from sending POST /prompt to its arrival, both ways, and the
difference: a difference that is there from ``execution_start`` on was added before ComfyUI
started the prompt; one that grows over the events was added while it ran.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pool_support import invert_graph, one_comfyui_arguments, pool_in_front_of_comfyui, run  # noqa: E402
from swarmkeeper.clients.comfyui import ComfyClient, ComfyEvents  # noqa: E402

Timeline = list[tuple[str, float]]


async def follow(comfy: ComfyClient, events: ComfyEvents) -> Timeline:
    """(event name, seconds since POST /prompt) for the answer and each event up to the done marker."""
    started = time.perf_counter()
    prompt_id = (await comfy.queue_prompt(invert_graph(random.randrange(1, 0xFFFFFF)), events.client_id))["prompt_id"]
    timeline = [("answer to POST /prompt", time.perf_counter() - started)]
    while True:
        frame = await events.recv_frame()
        at = time.perf_counter() - started
        if isinstance(frame, bytes):
            continue
        event = json.loads(frame)
        kind, data = event["type"], event.get("data") or {}
        if kind == "status":
            continue
        timeline.append((f"{kind} {data.get('node')}" if kind == "executing" else kind, at))
        if kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
            return timeline


async def measure(comfy_url: str, pool_url: str, prompts: int) -> tuple[list[Timeline], list[Timeline]]:
    direct: list[Timeline] = []
    pooled: list[Timeline] = []
    async with ComfyClient(comfy_url) as to_comfy, ComfyClient(pool_url) as to_pool, \
            to_comfy.connect_events(uuid.uuid4().hex) as comfy_events, \
            to_pool.connect_events(uuid.uuid4().hex) as pool_events:
        for n in range(prompts + 10):  # the first ten warm both paths up
            one_direct = await follow(to_comfy, comfy_events)
            one_pooled = await follow(to_pool, pool_events)
            if n >= 10:
                direct.append(one_direct)
                pooled.append(one_pooled)
    return direct, pooled


def medians(timelines: list[Timeline]) -> list[tuple[tuple[str, int], float]]:
    """The median time of each event, named with its occurrence (the 2nd ``progress_state`` is
    ``("progress_state", 2)``), over the timelines that have the most common sequence."""
    shapes = [tuple(name for name, _ in timeline) for timeline in timelines]
    shape = max(set(shapes), key=shapes.count)
    chosen = [timeline for timeline in timelines if tuple(name for name, _ in timeline) == shape]
    keys = [(name, shape[: n + 1].count(name)) for n, name in enumerate(shape)]
    return [(key, statistics.median(timeline[n][1] for timeline in chosen)) for n, key in enumerate(keys)]


def main() -> None:
    args = one_comfyui_arguments(__doc__ or "")
    with pool_in_front_of_comfyui(args.comfy_url) as (comfy_url, pool_url):
        direct, pooled = run(measure(comfy_url, pool_url, args.prompts))
    direct_at, pooled_at = dict(medians(direct)), medians(pooled)
    print(f"prompts: {args.prompts} each way, alternating; median ms from POST /prompt")
    print(f"{'event':28s} {'direct':>8s} {'pool':>8s} {'added':>8s}")
    for (event, nth), at in pooled_at:
        base = direct_at.get((event, nth))
        added = f"{(at - base) * 1000:+8.2f}" if base is not None else ""
        shown = f"{base * 1000:8.2f}" if base is not None else " " * 8
        label = event if nth == 1 else f"{event} ({nth})"
        print(f"{label:28s} {shown} {at * 1000:8.2f} {added}")


if __name__ == "__main__":
    main()
