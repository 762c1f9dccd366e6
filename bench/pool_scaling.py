"""The pool's scaling: 16 backends (fake ComfyUIs that answer as the recorded traffic, 100 ms per
prompt, max_usages 1), 800 prompts from 32 concurrent clients, each sending its next prompt when its
last one is done.

    .venv/bin/python bench/pool_scaling.py [--backends 16] [--prompts 800] [--clients 32] [--job_seconds 0.1]
        [--against /work/main --rounds 3]

Prints the makespan over the ideal (prompts × job time / backends; goal: at most 1.03), how long a
backend stood idle between two prompts (from the fakes' history), swarmkeeper's CPU time and the
scheduler's own time per dispatch (from /metrics). The fakes run in one child process, swarmkeeper
in another, the clients here; the clients connect first, and the makespan runs from the first
prompt sent to the last one done. Then, for scale, the same prompts go straight to the same fakes
(no pool), the clients shared out among them: what the fakes and clients cost on this machine.
With ``--against`` another checkout's server runs beside this one's, on the same fakes, and the two
take turns (``--rounds`` each): old and new compared in one run, under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pool_support import (  # noqa: E402
    Server,
    add_backends,
    invert_graph,
    metric,
    run,
    run_one,
    start_server,
)
from swarmkeeper.clients.comfyui import ComfyClient, ComfyEvents  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402


async def serve_fakes(ports: list[int], job_seconds: float) -> None:
    from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui

    async with asyncio.TaskGroup() as group:
        for port in ports:
            group.create_task(_serve_one(run_fake_comfyui, port, job_seconds))


async def _serve_one(run: object, port: int, job_seconds: float) -> None:
    async with run(port=port, job_seconds=job_seconds):  # type: ignore[operator]
        await asyncio.Event().wait()


def start_fakes(count: int, job_seconds: float) -> tuple[list[str], subprocess.Popen[bytes]]:
    ports = [free_port() for _ in range(count)]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from bench.pool_scaling import run, serve_fakes; "
            "run(serve_fakes([int(p) for p in sys.argv[3:]], float(sys.argv[2])))")
    process = subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(job_seconds), *map(str, ports)],
                               cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return [f"http://127.0.0.1:{port}" for port in ports], process


async def connect(comfy_url: str) -> tuple[ComfyClient, ComfyEvents]:
    comfy = ComfyClient(comfy_url, timeout=120)
    events = await comfy.connect_events(uuid.uuid4().hex)
    await events.recv()  # the greeting
    return comfy, events


async def client(comfy: ComfyClient, events: ComfyEvents, prompts: int, latencies: list[float]) -> float:
    """Send the prompts one after another; when the last was done. The connection is closed then
    (a client that stops reading while the others go on would fill with their status messages)."""
    try:
        for _ in range(prompts):
            latencies.append(await run_one(comfy, events, invert_graph(int.from_bytes(os.urandom(3), "big"))))
        return time.perf_counter()
    finally:
        await events.aclose()
        await comfy.aclose()


async def drive(comfy_url: str, prompts: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    share = [prompts // clients + (1 if n < prompts % clients else 0) for n in range(clients)]
    connected = await asyncio.gather(*(connect(comfy_url) for _ in share))
    started = time.perf_counter()
    done = await asyncio.gather(*(client(comfy, events, count, latencies)
                                  for (comfy, events), count in zip(connected, share, strict=True)))
    return max(done) - started, latencies


async def drive_direct(urls: list[str], prompts: int, clients: int) -> float:
    """The same prompts sent straight to the fakes, the clients shared out evenly among them (no pool:
    what the fakes and the clients cost on this machine by themselves)."""
    share = [prompts // clients + (1 if n < prompts % clients else 0) for n in range(clients)]
    connected = await asyncio.gather(*(connect(urls[n % len(urls)]) for n in range(clients)))
    started = time.perf_counter()
    done = await asyncio.gather(*(client(comfy, events, count, [])
                                  for (comfy, events), count in zip(connected, share, strict=True)))
    return max(done) - started


async def idle_between_prompts(urls: list[str]) -> list[float]:
    """Milliseconds each backend stood idle between two prompts (one's execution_success to the
    next one's execution_start, from the fakes' history); the history is cleared after."""
    gaps: list[float] = []
    for url in urls:
        async with ComfyClient(url) as comfy:
            runs = []
            for entry in (await comfy.history()).values():
                stamps = {kind: data["timestamp"] for kind, data in entry["status"]["messages"]}
                runs.append((stamps["execution_start"], stamps["execution_success"]))
            await comfy.clear_history()
        runs.sort()
        gaps += [after[0] - before[1] for before, after in itertools.pairwise(runs)]
    return gaps


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(process.pid).cpu_times()
    return times.user + times.system


@dataclass
class PoolRun:
    makespan: float
    cpu: float
    fakes_cpu: float
    gaps: list[float]


def measure_pool(server: Server, fakes: subprocess.Popen[bytes], urls: list[str], prompts: int,
                 clients: int) -> PoolRun:
    before, fakes_before = cpu_seconds(server.process), cpu_seconds(fakes)
    makespan, _ = run(drive(server.comfy_url, prompts, clients))
    busy, fakes_busy = cpu_seconds(server.process) - before, cpu_seconds(fakes) - fakes_before
    return PoolRun(makespan, busy, fakes_busy, run(idle_between_prompts(urls)))


def report(name: str, runs: list[PoolRun], ideal: float, prompts: int) -> None:
    ratios = ", ".join(f"{one.makespan / ideal:.3f}" for one in runs)
    cpu = ", ".join(f"{one.cpu / prompts * 1000:.2f}" for one in runs)
    gaps = [gap for one in runs for gap in one.gaps]
    print(f"{name}: makespan / ideal {ratios}; CPU per prompt (ms) {cpu}; a backend idle between two prompts "
          f"median {statistics.median(gaps):.1f} ms, mean {statistics.mean(gaps):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=800)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--job_seconds", type=float, default=0.1)
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout (main's, say) whose server takes turns with this one's")
    parser.add_argument("--rounds", type=int, default=1, help="pool runs per server, taking turns")
    args = parser.parse_args()
    urls, fakes = start_fakes(args.backends, args.job_seconds)
    runs: dict[str, list[PoolRun]] = {"this checkout": []}
    with tempfile.TemporaryDirectory() as folder:
        servers = {"this checkout": start_server(Path(folder) / "Data")}
        if args.against is not None:
            servers[str(args.against)] = start_server(Path(folder) / "Against", args.against.resolve())
            runs[str(args.against)] = []
        try:
            for server in servers.values():
                run(add_backends(server, urls, over_queue=0))
            for turn in range(args.rounds):
                for name in list(servers)[:: 1 if turn % 2 == 0 else -1]:
                    runs[name].append(measure_pool(servers[name], fakes, urls, args.prompts, args.clients))
            server = servers["this checkout"]
            total = run(metric(server, "swarmkeeper_dispatch_decision_seconds_sum"))
            count = run(metric(server, "swarmkeeper_dispatch_decision_seconds_count"))
            for server in servers.values():
                server.stop()
            direct = run(drive_direct(urls, args.prompts, args.clients))
            direct_gaps = run(idle_between_prompts(urls))
        finally:
            for server in servers.values():
                server.stop()
            fakes.terminate()
            fakes.wait(10)
    ideal = args.prompts * args.job_seconds / args.backends
    first = runs["this checkout"][0]
    makespan, busy, fakes_busy, pool_gaps = first.makespan, first.cpu, first.fakes_cpu, first.gaps
    print(f"{args.prompts} prompts, {args.clients} clients, {args.backends} backends of {args.job_seconds * 1000:g} ms")
    print(f"makespan {makespan:.3f} s, ideal {ideal:.3f} s")
    print(f"makespan / ideal: {makespan / ideal:.3f} (goal: at most 1.03)")
    print(f"for scale, the same prompts straight to the fakes ({args.clients / args.backends:g} clients each, so a "
          f"prompt waits in each fake's own queue): makespan {direct:.3f} s, / ideal {direct / ideal:.3f}; "
          f"pool / direct {makespan / direct:.3f}")
    print(f"a backend idle between two prompts (ms, from the fakes' history): through the pool median "
          f"{statistics.median(pool_gaps):.1f}, mean {statistics.mean(pool_gaps):.2f}; direct median "
          f"{statistics.median(direct_gaps):.1f}, mean {statistics.mean(direct_gaps):.2f}")
    print(f"swarmkeeper's CPU: {busy:.2f} s over the makespan ({busy / makespan:.0%} of one core), "
          f"{busy / args.prompts * 1000:.2f} ms per prompt; the fakes' process: {fakes_busy / makespan:.0%} of one "
          "core")
    print(f"scheduler time per dispatch: {total / count * 1e6:.1f} µs over {count:.0f} dispatches")
    if len(runs) > 1 or args.rounds > 1:
        print(f"taking turns, {args.rounds} rounds:")
        for name, done in runs.items():
            report(name, done, ideal, args.prompts)


if __name__ == "__main__":
    main()
