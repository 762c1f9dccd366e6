"""CPU per websocket frame received: EventFeed (the pool's links) against ComfyEvents (an awaiting
reader), in one run, taking turns, on frames that arrive one at a time as a ComfyUI sends them.

    .venv/bin/python bench/event_feed.py [--frames 2000] [--rounds 3]

A websockets server in a child process sends each connection ``--frames`` ComfyUI-shaped text
frames, 1 ms apart, then closes it; this process's CPU time (user + system) per frame is measured
for each client. Prints both and the ratio EventFeed / ComfyEvents (lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarmkeeper.clients.comfyui import ComfyClient  # noqa: E402

FRAME = '{"type": "progress_state", "data": {"prompt_id": "%s", "nodes": {"1": {"value": 1.0, "max": 1.0}}}}'


async def serve(frames: int) -> None:
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve

    async def handler(ws: ServerConnection) -> None:
        for n in range(frames):
            await ws.send(FRAME % n)
            await asyncio.sleep(0.001)
        await ws.close()

    async with ws_serve(handler, "127.0.0.1", 0, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def with_events(comfy: ComfyClient) -> int:
    count = 0
    async with comfy.connect_events("bench") as events:
        async for _ in events.frames():
            count += 1
    return count


async def with_feed(comfy: ComfyClient) -> int:
    count = 0

    def on_frame(frame: str | bytes) -> None:
        nonlocal count
        count += 1

    feed = await comfy.open_feed("bench", on_frame)
    await feed.ended
    await feed.aclose()
    return count


async def measure(url: str, rounds: int) -> tuple[list[float], list[float]]:
    events, feed = [], []
    async with ComfyClient(url) as comfy:
        for _ in range(rounds):
            for way, results in ((with_events, events), (with_feed, feed)):
                before = cpu()
                count = await way(comfy)
                results.append((cpu() - before) / count)
    return events, feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(serve(args.frames))
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--frames", str(args.frames)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        started = time.perf_counter()
        events, feed = uvloop.run(measure(f"http://127.0.0.1:{port}", args.rounds))
    finally:
        server.terminate()
        server.wait(10)
    events_us, feed_us = statistics.median(events) * 1e6, statistics.median(feed) * 1e6
    print(f"frames: {args.frames} per connection, {args.rounds} rounds each, {time.perf_counter() - started:.0f} s")
    print(f"ComfyEvents (awaiting reader): {events_us:.1f} µs of CPU per frame")
    print(f"EventFeed (callback):          {feed_us:.1f} µs of CPU per frame")
    print(f"ratio: {feed_us / events_us:.3f}")


if __name__ == "__main__":
    main()
