"""What the pool benchmarks share: a swarmkeeper server as a child process with its ComfyUI pool on
a port of its own, backends added through the API, and one prompt followed to its done marker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvloop

from swarmkeeper.clients.comfyui import ComfyClient, ComfyEvents, parse_text_event, peek_type
from swarmkeeper.net import free_port

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "scripts" / "comfyui-peer"
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the benchmark's own side on uvloop, as the server runs: on two cores, the clients and
    fakes share the CPU with what they measure, and should take no more of it than they must."""
    return uvloop.run(main)


def invert_graph(color: int, size: int = 64) -> dict[str, Any]:
    """EmptyImage → ImageInvert → SaveImage."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bench"}},
    }


@dataclass
class Server:
    url: str
    comfy_url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(data_dir: Path, root: Path = ROOT) -> Server:
    """swarmkeeper as a child process; ``root``: the checkout whose code it runs (another one's, to
    compare two versions in one run; its own venv's Python when it has one)."""
    port, comfy_port = free_port(), free_port()
    python = root / ".venv" / "bin" / "python" if root != ROOT and (root / ".venv").is_dir() else Path(sys.executable)
    process = subprocess.Popen(
        [str(python), "-m", "swarmkeeper", "serve", "--port", str(port), "--comfy_port", str(comfy_port),
         "--data_dir", str(data_dir), "--loglevel", "Warning", "--log_max_mb", "0"],
        cwd=root, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError("swarmkeeper exited early")
        try:
            httpx.post(f"{url}/API/GetNewSession", json={}, timeout=1)
            return Server(url, f"http://127.0.0.1:{comfy_port}", process)
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("swarmkeeper did not start")


def start_comfyui() -> tuple[str, str]:
    """A real ComfyUI started with scripts/comfyui-peer: (its URL, its peer name)."""
    port = free_port()
    name = f"bench-{port}"
    started = subprocess.run([str(PEER), "start", "--port", str(port), "--name", name, "--", "--disable-api-nodes"],
                             capture_output=True, text=True, timeout=300, check=False)
    if started.returncode != 0:
        raise SystemExit(f"could not start a real ComfyUI: {started.stderr[-2000:]}")
    return f"http://127.0.0.1:{port}", name


def one_comfyui_arguments(doc: str, *, against: bool = False) -> argparse.Namespace:
    """``--prompts`` and ``--comfy_url``: the options of the benchmarks against one real ComfyUI
    (and ``--against``, another checkout to compare with, when asked for)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--comfy_url", default=None, help="a running ComfyUI (default: start one)")
    if against:
        parser.add_argument("--against", type=Path, default=None,
                            help="another checkout (main's, say) whose pool takes turns with this one's")
    return parser.parse_args()


@contextlib.contextmanager
def pool_in_front_of_comfyui(comfy_url: str | None, root: Path = ROOT) -> Iterator[tuple[str, str]]:
    """A real ComfyUI (the one at ``comfy_url``, or one started here and stopped after) and a
    swarmkeeper server whose pool has it as its one backend: (ComfyUI's URL, the pool's URL)."""
    comfy_url, name = (comfy_url, None) if comfy_url else start_comfyui()
    try:
        with tempfile.TemporaryDirectory() as folder:
            server = start_server(Path(folder) / "Data", root)
            try:
                run(add_backends(server, [comfy_url], over_queue=1))
                yield comfy_url, server.comfy_url
            finally:
                server.stop()
    finally:
        if name is not None:
            subprocess.run([str(PEER), "stop", "--name", name, "--clean"], capture_output=True, timeout=60,
                           check=False)


async def add_backends(server: Server, urls: list[str], over_queue: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        session = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
        for address in urls:
            body = {"session_id": session, "type_id": "comfyui_api"}
            added = (await http.post("/API/AddNewBackend", json=body)).json()
            await http.post("/API/EditBackend", json={"session_id": session, "backend_id": added["id"], "title": "",
                                                      "settings": {"Address": address, "OverQueue": over_queue}})
        for _ in range(600):
            listing = (await http.post("/API/ListBackends", json={"session_id": session})).json()
            if sum(1 for entry in listing.values() if entry["status"] == "running") == len(urls):
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("the backends did not all start")


async def run_one(comfy: ComfyClient, events: ComfyEvents, graph: dict[str, Any]) -> float:
    """Seconds from POST /prompt to the prompt's done marker. Frames that cannot be it are not parsed:
    the clients share the machine with what they measure (32 of them get every status broadcast)."""
    started = time.perf_counter()
    prompt_id = (await comfy.queue_prompt(graph, events.client_id))["prompt_id"]
    while True:
        frame = await events.recv_frame()
        if isinstance(frame, bytes) or peek_type(frame) not in ("executing", None):
            continue
        event = parse_text_event(frame)
        data = event.get("data")
        if event["type"] == "executing" and isinstance(data, dict) and data.get("node") is None \
                and data.get("prompt_id") == prompt_id:
            return time.perf_counter() - started


async def metric(server: Server, name: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{server.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def report_pair(what: str, count: int, direct: list[float], pooled: list[float], *, digits: int = 2,
                goal: str = "") -> None:
    """Print both medians (in ms) and the ratio of a run that alternated direct and pooled."""
    direct_median, pooled_median = statistics.median(direct), statistics.median(pooled)
    print(f"{what}: {count} each way, alternating")
    print(f"direct to ComfyUI:  median {direct_median * 1000:.{digits}f} ms")
    print(f"through the pool:   median {pooled_median * 1000:.{digits}f} ms")
    print(f"ratio: {pooled_median / direct_median:.3f}" + (f" (goal: {goal})" if goal else ""))

