"""SwarmUI's GenerateText2Image against ComfyUI itself: the same 64×64, 2-step text-to-image with the
project's tiny SD1.5 checkpoint (scripts/make-tiny-model), a new seed each time so nothing is cached,
sent alternately through swarmkeeper's ``GenerateText2Image`` (the answer names the saved image) and
straight to that ComfyUI (POST /prompt, the done marker on its websocket, then GET /view of the
image), in one run.

    .venv/bin/python bench/generate_overhead.py [--images 40]

A real ComfyUI with the tiny model is started with scripts/comfyui-peer (and stopped after).
Prints both medians and the ratio (goal: at most 1.05).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pool_support import PEER, add_backends, run, run_one, start_server  # noqa: E402
from swarmkeeper.clients.comfyui import ComfyClient, ComfyEvents  # noqa: E402
from swarmkeeper.dispatch.graph import T2IParams, text_to_image  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402

MODEL = "tiny.ckpt"
PARAMS = {"width": 64, "height": 64, "steps": 2, "cfgscale": 1.0, "prompt": "a lighthouse", "model": MODEL}


@contextmanager
def comfyui_with_tiny_model(folder: Path) -> Iterator[str]:
    """A real ComfyUI whose models/checkpoints holds the tiny model: its URL."""
    port = free_port()
    name = f"bench-{port}"
    run_dir = Path(subprocess.run([str(PEER), "path", "--run-dir"], capture_output=True, text=True,
                                  check=True).stdout.strip()) / name
    checkpoints = run_dir / "base" / "models" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(ROOT / "scripts" / "make-tiny-model"), str(folder / MODEL)], check=True)
    (checkpoints / MODEL).symlink_to(folder / MODEL)
    started = subprocess.run([str(PEER), "start", "--port", str(port), "--name", name, "--", "--disable-api-nodes",
                              "--use-pytorch-cross-attention"], capture_output=True, text=True, timeout=300,
                             check=False)
    if started.returncode != 0:
        raise SystemExit(f"could not start a real ComfyUI: {started.stderr[-2000:]}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([str(PEER), "stop", "--name", name, "--clean"], capture_output=True, timeout=60, check=False)


async def through_swarmkeeper(http: httpx.AsyncClient, session: str) -> float:
    started = time.perf_counter()
    answer = (await http.post("/API/GenerateText2Image", json={
        "session_id": session, "images": 1, "seed": random.randrange(2**31), **PARAMS})).json()
    if "images" not in answer:
        raise SystemExit(f"GenerateText2Image failed: {answer}")
    return time.perf_counter() - started


async def straight_to_comfyui(comfy: ComfyClient, events: ComfyEvents, http: httpx.AsyncClient) -> float:
    params = T2IParams(**{**{k: v for k, v in PARAMS.items() if k != "model"}, "seed": random.randrange(2**31)})
    started = time.perf_counter()
    await run_one(comfy, events, text_to_image(params, MODEL))
    history = (await http.get("/history", params={"max_items": 1})).json()
    (entry,) = history.values()
    (image,) = [item for output in entry["outputs"].values() for item in output.get("images", [])]
    (await http.get("/view", params=image)).raise_for_status()
    return time.perf_counter() - started


async def measure(comfy_url: str, server_url: str, images: int) -> tuple[list[float], list[float]]:
    direct, routed = [], []
    async with ComfyClient(comfy_url) as comfy, comfy.connect_events(uuid.uuid4().hex) as events, \
            httpx.AsyncClient(base_url=comfy_url, timeout=300) as to_comfy, \
            httpx.AsyncClient(base_url=server_url, timeout=300) as to_server:
        session = (await to_server.post("/API/GetNewSession", json={})).json()["session_id"]
        for _ in range(3):  # the first image loads the model
            await straight_to_comfyui(comfy, events, to_comfy)
            await through_swarmkeeper(to_server, session)
        for _ in range(images):
            direct.append(await straight_to_comfyui(comfy, events, to_comfy))
            routed.append(await through_swarmkeeper(to_server, session))
    return direct, routed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, comfyui_with_tiny_model(Path(folder)) as comfy_url:
        server = start_server(Path(folder) / "Data")
        try:
            run(add_backends(server, [comfy_url], over_queue=1))
            direct, routed = run(measure(comfy_url, server.url, args.images))
        finally:
            server.stop()
    direct_median, routed_median = statistics.median(direct), statistics.median(routed)
    print(f"images: {args.images} each way, alternating (64x64, 2 steps, cfg 1, tiny SD1.5 checkpoint)")
    print(f"straight to ComfyUI:         median {direct_median * 1000:.1f} ms")
    print(f"through GenerateText2Image:  median {routed_median * 1000:.1f} ms")
    print(f"ratio: {routed_median / direct_median:.3f} (goal: at most 1.05)")
    paired = statistics.median(after / before for before, after in zip(direct, routed, strict=True))
    print(f"median of the paired ratios (each image against the direct one just before it): {paired:.3f}")


if __name__ == "__main__":
    main()
