"""A burst against an autoscaling backend that starts from zero workers.

    .venv/bin/python bench/autoscale.py [--start 2.0] [--jobs 12] [--job-seconds 1.0] [--max 3]

Each worker is a fake ComfyUI behind a start script that first sleeps ``--start`` seconds (a worker
that takes a fixed time to come up). In the same run:

1. the worker's own start time: the script run by hand, ``/system_stats`` polled every 10 ms;
2. a swarmkeeper master (default timings) whose autoscaling backend has no worker, MinBackends 0,
   MaxBackends ``--max``, MinQueuedBeforeExpand 1, MinWaitBetweenStart 0; ``--jobs`` requests arrive
   at once through the scheduler, each holding its slot ``--job-seconds`` once granted.

Prints the time from the burst to the first request served against the worker's own start (goal: at
most 1 s more), and the burst's makespan against the ideal for the workers reached, given when each
became ready and its slots (goal: at most 1.10).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarmkeeper.app import start_services, stop_services  # noqa: E402
from swarmkeeper.backends.status import BackendStatus  # noqa: E402
from swarmkeeper.config import ServerConfig  # noqa: E402
from swarmkeeper.dispatch.pool.routes import POOL_KEY  # noqa: E402
from swarmkeeper.dispatch.requests import Request  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402

PY = sys.executable
FREE_PORT = f"{PY} -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"


def worker_script(folder: Path, start: float) -> Path:
    path = folder / "worker.sh"
    path.write_text(f"#!/bin/sh\nPORT=${{PORT:-$({FREE_PORT})}}\n"
                    'echo "[SwarmAutoScaleBackend]DoRetries: 20[/SwarmAutoScaleBackend]"\n'
                    'echo "[SwarmAutoScaleBackend]NewURL: http://127.0.0.1:$PORT/[/SwarmAutoScaleBackend]"\n'
                    f"sleep {start}\nexec {PY} -m swarmkeeper_doubles.fake_comfyui --port $PORT\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def own_start(script: Path) -> float:
    """Seconds from spawning the script to the worker answering."""
    port = free_port()
    began = time.perf_counter()
    env = {**os.environ, "PORT": str(port)}
    process = await asyncio.create_subprocess_exec(str(script), cwd=script.parent, env=env,
                                                   stdout=asyncio.subprocess.DEVNULL, start_new_session=True)
    try:
        async with httpx.AsyncClient(timeout=1) as http:
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/system_stats")).status_code == 200:
                        return time.perf_counter() - began
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
    finally:
        process.terminate()
        await process.wait()


def backends_fds(script: Path, maximum: int) -> str:
    settings = {"MaxBackends": maximum, "MinBackends": 0, "MinWaitBetweenStart": 0, "MinWaitAfterFailure": 0,
                "MinQueuedBeforeExpand": 1, "MinIdleTime": 10, "StartScript": script,
                "ConnectionAttemptTimeoutSeconds": 5}
    lines = ["0:", "\ttype: autoscalingbackend", "\ttitle: Farm", "\tenabled: true", "\tsettings:"]
    lines += [f"\t\t{name}: {value}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def ideal_makespan(ready: list[tuple[float, int]], jobs: int, seconds: float) -> float:
    """Greedy: each job on the slot free first, given each worker's ready time and its slots."""
    slots = [at for at, count in ready for _ in range(count)]
    heapq.heapify(slots)
    end = 0.0
    for _ in range(jobs):
        free = heapq.heappop(slots)
        end = max(end, free + seconds)
        heapq.heappush(slots, free + seconds)
    return end


async def burst(folder: Path, script: Path, args: argparse.Namespace) -> tuple[float, float, float, int]:
    data = folder / "master"
    data.mkdir()
    (data / "Backends.fds").write_text(backends_fds(script, args.max))
    services = await start_services(ServerConfig(data_dir=data, comfy_port=None))
    try:
        while True:  # the autoscaling backend is up before the burst
            if services.registry.get(0).status is BackendStatus.RUNNING:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.01)
        scheduler = services.extra[POOL_KEY].scheduler
        ready: dict[int, float] = {}
        t0 = time.perf_counter()
        grants: list[float] = []

        async def one() -> float:
            grant = await scheduler.acquire(Request(check=lambda record: None))
            grants.append(time.perf_counter() - t0)
            await asyncio.sleep(args.job_seconds)
            scheduler.release(grant.record)
            return time.perf_counter() - t0

        async def watch() -> None:
            while True:
                for record in services.registry.all():
                    if record.parent is not None and record.status is BackendStatus.RUNNING and record.id not in ready:
                        ready[record.id] = time.perf_counter() - t0
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        ends = await asyncio.gather(*(one() for _ in range(args.jobs)))
        watcher.cancel()
        slots = [(at, services.registry.get(i).max_usages) for i, at in ready.items()]  # type: ignore[union-attr]
        return min(grants), max(ends), ideal_makespan(slots, args.jobs, args.job_seconds), len(ready)
    finally:
        await stop_services(services)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--max", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-autoscale-") as tmp:
        folder = Path(tmp)
        script = worker_script(folder, args.start)
        await own_start(script)  # warm-up: .pyc files, the page cache
        own = await own_start(script)
        first, makespan, ideal, workers = await burst(folder, script, args)
    print(f"worker's own start:           {own:.2f} s")
    print(f"burst to first request served: {first:.2f} s ({first - own:+.2f} s; goal at most +1.00 s: "
          f"{'met' if first - own <= 1.0 else 'NOT met'})")
    print(f"makespan: {makespan:.2f} s, ideal for the {workers} workers reached as they came up: {ideal:.2f} s, "
          f"ratio {makespan / ideal:.3f} (goal at most 1.10: {'met' if makespan / ideal <= 1.10 else 'NOT met'})")


if __name__ == "__main__":
    asyncio.run(main())
