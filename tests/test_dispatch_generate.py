"""SwarmUI's generation routes through the pool, end to end on a fake ComfyUI that lists a
checkpoint: images come back inline, over HTTP and websocket; bad parameters are refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import websockets

from swarmkeeper.dispatch.graph import T2IParams, checkpoint_name, parse_params, text_to_image
from swarmkeeper_doubles.fake_comfyui import png_size, run_fake_comfyui
from tests.pool_support import pool_server

MODEL = {"checkpoints": ["sd15.safetensors"]}


async def test_generate_text2image_returns_one_inline_png_per_image(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.02, models=MODEL) as one, \
            run_fake_comfyui(job_seconds=0.02, models=MODEL) as two, \
            pool_server(data_dir, [one.url, two.url]) as pool:
        answer = await pool.api.ok("GenerateText2Image", images=4, prompt="a cat", model="sd15", steps=3, seed=7)
        assert len(answer["images"]) == 4
        for url in answer["images"]:
            assert url.startswith("data:image/png;base64,")
            assert png_size(base64.b64decode(url.split(",", 1)[1])) is not None
        sent = [c.body["prompt"] for f in (one, two) for c in f.calls_to("/prompt", "POST")]
        assert sorted(graph["3"]["inputs"]["seed"] for graph in sent) == [7, 8, 9, 10]  # one higher per image
        assert {graph["4"]["inputs"]["ckpt_name"] for graph in sent} == {"sd15.safetensors"}
        assert one.calls_to("/prompt", "POST") and two.calls_to("/prompt", "POST")


async def test_generation_refusals_are_swarmui_errors(data_dir: Path) -> None:
    async with run_fake_comfyui(models=MODEL) as fake, pool_server(data_dir, [fake.url]) as pool:
        assert "No model selected" in await pool.api.error("GenerateText2Image", images=1, prompt="x")
        assert "Invalid value for parameter steps" in await pool.api.error("GenerateText2Image", images=1,
                                                                            model="sd15", steps="many")
        missing = await pool.api.error("GenerateText2Image", images=1, model="nope")
        assert "nope" in missing
        assert fake.calls_to("/prompt", "POST") == []
        assert (await pool.api.ok("InterruptAll")) == {"success": True}


async def test_generate_text2image_ws_streams_status_progress_and_images(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.05, models=MODEL) as fake, pool_server(data_dir, [fake.url]) as pool:
        session = await pool.api.new_session()
        async with websockets.connect(pool.url.replace("http", "ws") + "/API/GenerateText2ImageWS") as socket:
            await socket.send(json.dumps({"session_id": session, "images": 2, "prompt": "x", "model": "sd15"}))
            messages = [json.loads(message) async for message in socket]
        kinds = [next(iter(message)) for message in messages]
        assert kinds[0] == "status" and kinds[-1] == "status"
        assert "gen_progress" in kinds and kinds.count("image") == 2
        assert kinds[-3:-1] == ["discard_indices", "socket_intention"]
        images = [m for m in messages if "image" in m]
        assert sorted(m["batch_index"] for m in images) == ["0", "1"]


def test_the_text_to_image_graph_is_comfyuis_default_workflow() -> None:
    params = parse_params({"prompt": "a", "NegativePrompt": "b", "steps": "30", "cfgscale": 5.5, "seed": 3,
                           "width": 768, "height": 512, "sampler": "dpmpp_2m", "scheduler": "karras"})
    graph = text_to_image(params, "m.safetensors", index=2)
    assert {node["class_type"] for node in graph.values()} == {
        "CheckpointLoaderSimple", "EmptyLatentImage", "CLIPTextEncode", "KSampler", "VAEDecode", "SaveImage"}
    sampler = graph["3"]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["cfg"], sampler["sampler_name"], sampler["scheduler"]) == \
        (5, 30, 5.5, "dpmpp_2m", "karras")
    assert graph["7"]["inputs"]["text"] == "b" and graph["5"]["inputs"]["width"] == 768
    assert T2IParams(seed=-1).resolved().seed >= 0
    assert checkpoint_name("m", ["m.safetensors"]) == "m.safetensors" and checkpoint_name("x", []) is None


async def test_the_generation_routes_need_their_permission(data_dir: Path) -> None:
    from swarmkeeper.api.permissions import BASIC_IMAGE_GENERATION, role_permissions

    assert BASIC_IMAGE_GENERATION.id in role_permissions("guest")
    async with run_fake_comfyui(models=MODEL) as fake, pool_server(data_dir, [fake.url]) as pool, \
            httpx.AsyncClient(base_url=pool.url) as http:
        answer = await http.post("/API/GenerateText2Image", json={"images": 1})
        assert answer.status_code == 400 and answer.json()["error_id"] == "basic_api"  # no session
