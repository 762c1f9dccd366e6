"""The pool's websocket relay at full speed: frames per second from one backend to one client
through swarmkeeper's pool, against a raw byte pipe between the same two ends.

    .venv/bin/python bench/relay_throughput.py [--images 3000] [--rounds 5]

The backend is the fake ComfyUI (in a child process, no job time): one prompt, ``EmptyImage`` of
``--images`` 8×8 images into ``SaveImageWebsocket``, which sends three frames per image
(``progress_state``, a binary preview frame with its metadata, ``progress``), as ComfyUI does.
The client asks for preview metadata, as ComfyUI's own page does. The byte pipe (a child process
that copies bytes both ways, nothing else) stands where the pool stands: the same client, the same
backend, the same prompt. Rounds alternate pipe and pool; each counts the frames from the first
one after ``POST /prompt`` to the prompt's done marker. Prints the median frames per second of
each, their ratio (goal: at least 0.5) and the CPU time each middle process spent per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pool_support import add_backends, run, start_server  # noqa: E402
from swarmkeeper.clients.comfyui import ComfyClient, parse_text_event, peek_type  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402

PIPE_CHUNK = 256 * 1024


# --- the two child processes ---


async def serve_fake(port: int) -> None:
    from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui

    async with run_fake_comfyui(port=port, job_seconds=0.0):
        await asyncio.Event().wait()


async def serve_pipe(port: int, upstream_port: int) -> None:
    """Copy bytes both ways between each connection and a new one to the upstream port."""

    async def copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(PIPE_CHUNK):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def child(code: str, *args: str) -> subprocess.Popen[bytes]:
    script = f"import sys; sys.path.insert(0, sys.argv[1]); from bench.relay_throughput import *; run({code})"
    return subprocess.Popen([sys.executable, "-c", script, str(ROOT), *args], cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def wait_listening(url: str) -> None:
    async with ComfyClient(url, timeout=5) as comfy:
        for _ in range(600):
            try:
                await comfy.system_stats()
                return
            except Exception:  # not up yet
                await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing answered at {url}")


# --- one round ---


def flood_graph(images: int, color: int) -> dict[str, object]:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": images,
                                                          "color": color}},
            "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}}


async def one_round(url: str, images: int, color: int) -> tuple[int, float]:
    """(frames, seconds) of one prompt's events, first frame to done marker."""
    client_id = uuid.uuid4().hex
    async with ComfyClient(url, timeout=120) as comfy, \
            comfy.connect_events(client_id, feature_flags={"supports_preview_metadata": True}) as events:
        await events.recv()  # status
        await events.recv()  # feature_flags
        prompt_id = (await comfy.queue_prompt(flood_graph(images, color), client_id))["prompt_id"]
        frames, first = 0, 0.0
        while True:
            frame = await events.recv_frame()
            if frames == 0:
                first = time.perf_counter()
            frames += 1
            if isinstance(frame, bytes) or peek_type(frame) != "executing":
                continue
            data = parse_text_event(frame).get("data")
            if isinstance(data, dict) and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return frames, time.perf_counter() - first


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(process.pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    fake_port, pipe_port = free_port(), free_port()
    fake = child("serve_fake(int(sys.argv[2]))", str(fake_port))
    pipe = child("serve_pipe(int(sys.argv[2]), int(sys.argv[3]))", str(pipe_port), str(fake_port))
    fake_url, pipe_url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{pipe_port}"
    rates: dict[str, list[float]] = {"pipe": [], "pool": []}
    cpu: dict[str, float] = {"pipe": 0.0, "pool": 0.0}
    frames_seen: dict[str, int] = {"pipe": 0, "pool": 0}
    try:
        run(wait_listening(fake_url))
        run(wait_listening(pipe_url))
        with tempfile.TemporaryDirectory() as folder:
            server = start_server(Path(folder) / "Data")
            try:
                run(add_backends(server, [fake_url], over_queue=1))
                middles = {"pipe": (pipe_url, pipe), "pool": (server.comfy_url, server.process)}
                for name, (url, _) in middles.items():  # warm up both
                    run(one_round(url, min(args.images, 100), 0x010203 if name == "pipe" else 0x040506))
                for number in range(args.rounds):
                    for name, (url, process) in middles.items():
                        before = cpu_seconds(process)
                        frames, seconds = run(one_round(url, args.images, 0x100000 + number * 2 + (name == "pool")))
                        cpu[name] += cpu_seconds(process) - before
                        frames_seen[name] += frames
                        rates[name].append(frames / seconds)
            finally:
                server.stop()
    finally:
        for process in (fake, pipe):
            process.terminate()
            process.wait(10)
    pipe_rate, pool_rate = statistics.median(rates["pipe"]), statistics.median(rates["pool"])
    print(f"{args.rounds} rounds of one prompt of {args.images} images ({frames_seen['pool'] // args.rounds} frames), "
          "alternating")
    print(f"raw byte pipe:    median {pipe_rate:,.0f} frames/s, {cpu['pipe'] / frames_seen['pipe'] * 1e6:.1f} µs CPU "
          "per frame in the pipe")
    print(f"through the pool: median {pool_rate:,.0f} frames/s, {cpu['pool'] / frames_seen['pool'] * 1e6:.1f} µs CPU "
          "per frame in swarmkeeper")
    print(f"ratio: {pool_rate / pipe_rate:.3f} (goal: at least 0.5)")


if __name__ == "__main__":
    main()
