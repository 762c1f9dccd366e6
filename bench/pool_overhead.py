"""The pool's overhead on one prompt: the same 64×64 model-free prompt (EmptyImage → ImageInvert →
SaveImage, a new colour each time so nothing is cached), sent one after another to a real ComfyUI
directly and through swarmkeeper's pool in front of that same ComfyUI, alternately, in one run.

    .venv/bin/python bench/pool_overhead.py [--prompts 200] [--comfy_url http://127.0.0.1:8188]

Without --comfy_url a real ComfyUI is started with scripts/comfyui-peer (and stopped after).
Prints both medians (POST /prompt to the done marker on the websocket), the ratio (goal: at most
1.10) and the CPU time swarmkeeper's process spent per pooled prompt.
"""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pool_support import (  # noqa: E402
    invert_graph,
    one_comfyui_arguments,
    pool_in_front_of_comfyui,
    report_pair,
    run,
    run_one,
)
from swarmkeeper.clients.comfyui import ComfyClient  # noqa: E402


async def measure(comfy_url: str, server_comfy_url: str, prompts: int) -> tuple[list[float], list[float]]:
    direct, pooled = [], []
    async with ComfyClient(comfy_url) as to_comfy, ComfyClient(server_comfy_url) as to_pool, \
            to_comfy.connect_events(uuid.uuid4().hex) as comfy_events, \
            to_pool.connect_events(uuid.uuid4().hex) as pool_events:
        for _ in range(10):  # warm up both paths (first prompts after a start are slow)
            await run_one(to_comfy, comfy_events, invert_graph(random.randrange(1, 0xFFFFFF)))
            await run_one(to_pool, pool_events, invert_graph(random.randrange(1, 0xFFFFFF)))
        for _ in range(prompts):
            direct.append(await run_one(to_comfy, comfy_events, invert_graph(random.randrange(1, 0xFFFFFF))))
            pooled.append(await run_one(to_pool, pool_events, invert_graph(random.randrange(1, 0xFFFFFF))))
    return direct, pooled


def swarmkeeper_cpu() -> float:
    """CPU seconds of this process's swarmkeeper child (the server the benchmark started)."""
    for child in psutil.Process().children():
        if "swarmkeeper" in child.cmdline():
            times = child.cpu_times()
            return times.user + times.system
    return float("nan")


def main() -> None:
    args = one_comfyui_arguments(__doc__ or "")
    with pool_in_front_of_comfyui(args.comfy_url) as (comfy_url, pool_url):
        before = swarmkeeper_cpu()
        direct, pooled = run(measure(comfy_url, pool_url, args.prompts))
        busy = swarmkeeper_cpu() - before
    report_pair("prompts", args.prompts, direct, pooled, goal="at most 1.10")
    print(f"swarmkeeper's CPU: {busy / (args.prompts + 10) * 1000:.2f} ms per pooled prompt")


if __name__ == "__main__":
    main()
