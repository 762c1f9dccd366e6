"""The pool's overhead on one prompt: the same 64×64 model-free prompt (EmptyImage → ImageInvert →
SaveImage, a new colour each time so nothing is cached), sent one after another to a real ComfyUI
directly and through swarmkeeper's pool in front of that same ComfyUI, alternately, in one run.

    .venv/bin/python bench/pool_overhead.py [--prompts 200] [--comfy_url http://127.0.0.1:8188]
        [--against /work/main]

Without --comfy_url a real ComfyUI is started with scripts/comfyui-peer (and stopped after).
Prints both medians (POST /prompt to the done marker on the websocket), the ratio (goal: at most
1.10) and the CPU time swarmkeeper's process spent per pooled prompt. With ``--against``, a second
pool (another checkout's server, in front of the same ComfyUI) takes its turn after each of them.
"""

from __future__ import annotations

import contextlib
import random
import statistics
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


async def measure(comfy_url: str, pool_urls: list[str], prompts: int) -> list[list[float]]:
    """Seconds per prompt: direct, then through each pool, taking turns prompt by prompt."""
    times: list[list[float]] = [[] for _ in range(len(pool_urls) + 1)]
    async with contextlib.AsyncExitStack() as stack:
        paths = []
        for url in [comfy_url, *pool_urls]:
            comfy = await stack.enter_async_context(ComfyClient(url))
            paths.append((comfy, await stack.enter_async_context(comfy.connect_events(uuid.uuid4().hex))))
        for _ in range(10):  # warm up every path (first prompts after a start are slow)
            for comfy, events in paths:
                await run_one(comfy, events, invert_graph(random.randrange(1, 0xFFFFFF)))
        for _ in range(prompts):
            for (comfy, events), got in zip(paths, times, strict=True):
                got.append(await run_one(comfy, events, invert_graph(random.randrange(1, 0xFFFFFF))))
    return times


def swarmkeeper_cpu(pid: int | None = None) -> float:
    """CPU seconds of this process's swarmkeeper child (the server the benchmark started; the one
    with ``pid`` when there are two)."""
    for child in psutil.Process().children():
        if "swarmkeeper" in child.cmdline() and pid in (None, child.pid):
            times = child.cpu_times()
            return times.user + times.system
    return float("nan")


def main() -> None:
    args = one_comfyui_arguments(__doc__ or "", against=True)
    with contextlib.ExitStack() as stack:
        comfy_url, pool_url = stack.enter_context(pool_in_front_of_comfyui(args.comfy_url))
        pool_urls = [pool_url]
        if args.against is not None:
            pool_urls.append(stack.enter_context(pool_in_front_of_comfyui(comfy_url, args.against.resolve()))[1])
        servers = [child for child in psutil.Process().children() if "swarmkeeper" in child.cmdline()]
        pids = [child.pid for child in sorted(servers, key=lambda child: child.cwd() != str(ROOT))]  # this one's first
        before = [swarmkeeper_cpu(pid) for pid in pids]
        direct, pooled, *others = run(measure(comfy_url, pool_urls, args.prompts))
        busy = [swarmkeeper_cpu(pid) - was for pid, was in zip(pids, before, strict=True)]
    report_pair("prompts", args.prompts, direct, pooled, goal="at most 1.10")
    print(f"swarmkeeper's CPU: {busy[0] / (args.prompts + 10) * 1000:.2f} ms per pooled prompt")
    for other in others:
        print(f"through {args.against}'s pool, taking turns: median {statistics.median(other) * 1000:.2f} ms, "
              f"ratio {statistics.median(other) / statistics.median(direct):.3f}; its CPU "
              f"{busy[-1] / (args.prompts + 10) * 1000:.2f} ms per pooled prompt")


if __name__ == "__main__":
    main()
