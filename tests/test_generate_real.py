"""SwarmUI's generation and model routes on real ComfyUIs running the project's tiny SD1.5
checkpoints (scripts/make-tiny-model): real PNGs of the asked size at their View paths, the same
seed giving the same bytes, the websocket's frames, the model lists, SelectModel, FreeBackendMemory
(the next generation reads the checkpoint again), and model-aware dispatch over two ComfyUIs."""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.comfy_peer import RealComfyUI
from tests.pool_support import PoolServer, pool_server
from tests.tiny_model import TinyModels, checkpoint_loads, running_with_models, tiny_models  # noqa: F401

pytestmark = [pytest.mark.comfyui, pytest.mark.own_comfyui]  # its ComfyUIs have the tiny models
#: Small and fast on 2 CPU cores: 64×64, 2 steps, cfg 1 (ComfyUI skips the negative pass).
FAST = {"width": 64, "height": 64, "steps": 2, "cfgscale": 1.0}


@pytest.fixture(scope="module")
def comfy_pair(tiny_models: TinyModels) -> Iterator[list[RealComfyUI]]:  # noqa: F811
    """Two real ComfyUIs with the tiny models, started side by side."""
    yield from running_with_models(2, tiny_models)


@pytest.fixture(scope="module")
def comfy_one(comfy_pair: list[RealComfyUI]) -> RealComfyUI:
    return comfy_pair[0]


@pytest.fixture(scope="module")
def comfy_two(comfy_pair: list[RealComfyUI]) -> RealComfyUI:
    return comfy_pair[1]


def decode_png(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines of an 8-bit RGB PNG (as ComfyUI saves them): fails on a broken one."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at, size = [], 8, (0, 0)
    while at < len(png):
        length = int.from_bytes(png[at:at + 4], "big")
        kind, body = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        if kind == b"IHDR":
            size = (int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big"))
        elif kind == b"IDAT":
            chunks.append(body)
        at += 12 + length
    rows = zlib.decompress(b"".join(chunks))
    assert len(rows) == size[1] * (1 + size[0] * 3)
    return size[0], size[1], rows


async def view(pool: PoolServer, url: str) -> bytes:
    async with httpx.AsyncClient(base_url=pool.url) as http:
        answer = await http.get(f"/{url}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png", url
    return answer.content


async def current_models(pool: PoolServer) -> dict[int, Any]:
    listed = await pool.api.ok("ListBackends", full_data=True)
    return {int(key): entry["current_model"] for key, entry in listed.items()}


async def generate(pool: PoolServer, **params: Any) -> list[str]:
    return list((await pool.api.ok("GenerateText2Image", **{**FAST, **params}))["images"])


async def test_text_to_image_on_a_real_comfyui_gives_real_pngs_and_model_routes_work(
        data_dir: Path, comfy_one: RealComfyUI) -> None:
    async with pool_server(data_dir, [comfy_one.url]) as pool:
        backend = pool.backend_ids[0]
        models = await pool.api.ok("ListModels", path="", depth=2)
        assert [(m["name"], m["loaded"], m["local"]) for m in models["files"]] == [
            ("tiny-a.ckpt", False, True), ("tiny-b.ckpt", False, True)]
        seed = random.randrange(2**31)
        urls = await generate(pool, images=2, model="tiny-a.ckpt", prompt="a red fox", negativeprompt="blurry",
                              seed=seed, sampler="euler", scheduler="normal", width=64, height=96)
        first = [await view(pool, url) for url in urls]
        assert [decode_png(png)[:2] for png in first] == [(64, 96), (64, 96)]
        assert first[0] != first[1]  # seeds seed and seed + 1
        assert all(url.startswith("View/local/raw/") and url.endswith("-a red fox-tiny-a.png") for url in urls)
        assert await current_models(pool) == {backend: "tiny-a.ckpt"}
        (again,) = await generate(pool, images=1, model="tiny-a.ckpt", prompt="a red fox", negativeprompt="blurry",
                                  seed=seed, sampler="euler", scheduler="normal", width=64, height=96)
        assert again != urls[0] and await view(pool, again) == first[0]  # same seed, same bytes, a new file
        loads = checkpoint_loads(comfy_one)
        assert await pool.api.ok("FreeBackendMemory", system_ram=True) == {"result": True, "count": 1}
        assert await current_models(pool) == {backend: None}
        await generate(pool, images=1, model="tiny-a.ckpt", seed=seed + 5)
        assert checkpoint_loads(comfy_one) == loads + 1  # read from disk again after the free
        assert await pool.api.ok("SelectModel", model="tiny-b.ckpt") == {"success": True}
        assert await current_models(pool) == {backend: "tiny-b.ckpt"}
        assert checkpoint_loads(comfy_one) == loads + 2
        listed = await pool.api.ok("ListModels", path="", depth=2)
        assert [m["loaded"] for m in listed["files"]] == [False, True]


async def test_the_websocket_route_streams_progress_and_each_image_as_swarmui(
        data_dir: Path, comfy_one: RealComfyUI) -> None:
    async with pool_server(data_dir, [comfy_one.url]) as pool:
        session = await pool.api.new_session()
        body = {"session_id": session, "images": 2, "model": "tiny-a.ckpt", "prompt": "ws",
                "seed": random.randrange(2**31), **FAST}
        async with websockets.connect(pool.url.replace("http", "ws") + "/API/GenerateText2ImageWS") as socket:
            await socket.send(json.dumps(body))
            messages = [json.loads(message) async for message in socket]
    kinds = [next(iter(message)) for message in messages]
    assert kinds[0] == "status" and kinds[-3:] == ["discard_indices", "socket_intention", "status"]
    progress = [m["gen_progress"] for m in messages if "gen_progress" in m]
    assert progress and all({"batch_index", "overall_percent", "current_percent"} <= p.keys() for p in progress)
    assert any(p["current_percent"] > 0 for p in progress)  # KSampler's own step progress
    images = [m for m in messages if "image" in m]
    assert sorted(m["batch_index"] for m in images) == ["0", "1"]
    for message in images:
        assert message["image"].startswith("View/local/raw/")
        assert (data_dir / "Output" / message["image"].removeprefix("View/")).is_file()


async def test_model_aware_dispatch_over_two_real_comfyuis(
        data_dir: Path, comfy_one: RealComfyUI, comfy_two: RealComfyUI) -> None:
    async with pool_server(data_dir / "last-used", [comfy_one.url, comfy_two.url],
                           ModelLoadOrderPreference="last_used") as pool:
        one, two = pool.backend_ids
        await generate(pool, images=1, model="tiny-a.ckpt", seed=random.randrange(2**31))
        holder = next(key for key, model in (await current_models(pool)).items() if model == "tiny-a.ckpt")
        other = two if holder == one else one
        await generate(pool, images=1, model="tiny-b.ckpt", seed=random.randrange(2**31))
        assert await current_models(pool) == {holder: "tiny-a.ckpt", other: "tiny-b.ckpt"}  # the least recent
        loads = {comfy.url: checkpoint_loads(comfy) for comfy in (comfy_one, comfy_two)}
        for model in ("tiny-a.ckpt", "tiny-b.ckpt", "tiny-a.ckpt"):
            await generate(pool, images=1, model=model, seed=random.randrange(2**31))
        assert {comfy.url: checkpoint_loads(comfy) for comfy in (comfy_one, comfy_two)} == loads  # no reload
        missing = await pool.api.error("GenerateText2Image", images=1, model="tiny-c.ckpt", **FAST)
        assert missing.startswith("Invalid value for parameter Model: Invalid model value for param Model - "
                                  "'tiny-c.ckpt' - are you sure that model name is correct?")
        assert f"- backend #{one} (comfy {one}): missing model 'tiny-c.ckpt'" in missing
        assert f"- backend #{two} (comfy {two}): missing model 'tiny-c.ckpt'" in missing
    async with pool_server(data_dir / "first-free", [comfy_one.url, comfy_two.url],
                           ModelLoadOrderPreference="first_free") as pool:
        first, _ = pool.backend_ids
        for model in ("tiny-b.ckpt", "tiny-a.ckpt"):  # none holds it (a new server): the first free loads it
            await generate(pool, images=1, model=model, seed=random.randrange(2**31))
            assert (await current_models(pool))[first] == model
