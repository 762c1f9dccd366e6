"""SwarmUI's generation routes through the pool, end to end on a fake ComfyUI that lists a
checkpoint: images are saved and answered as View paths (inline with donotsave), over HTTP and
websocket; bad parameters are refused with SwarmUI's texts and nothing is queued."""

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


async def test_generate_text2image_saves_one_png_per_image_and_serves_it_at_its_view_path(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.02, models=MODEL) as one, \
            run_fake_comfyui(job_seconds=0.02, models=MODEL) as two, \
            pool_server(data_dir, [one.url, two.url]) as pool, httpx.AsyncClient(base_url=pool.url) as http:
        answer = await pool.api.ok("GenerateText2Image", images=4, prompt="a cat", model="sd15", steps=3, seed=7)
        assert len(answer["images"]) == 4 and len(set(answer["images"])) == 4
        for url in answer["images"]:
            assert url.startswith("View/local/raw/") and url.endswith("-a cat-sd15.png")
            served = await http.get(f"/{url}")
            assert served.status_code == 200 and served.headers["content-type"] == "image/png"
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["content-security-policy"] == "sandbox"
            assert png_size(served.content) is not None
            assert (data_dir / "Output" / url.removeprefix("View/")).read_bytes() == served.content
        sent = [c.body["prompt"] for f in (one, two) for c in f.calls_to("/prompt", "POST")]
        assert sorted(graph["3"]["inputs"]["seed"] for graph in sent) == [7, 8, 9, 10]  # one higher per image
        assert {graph["4"]["inputs"]["ckpt_name"] for graph in sent} == {"sd15.safetensors"}
        assert one.calls_to("/prompt", "POST") and two.calls_to("/prompt", "POST")
        inline = await pool.api.ok("GenerateText2Image", images=1, model="sd15", donotsave=True)
        assert png_size(base64.b64decode(inline["images"][0].removeprefix("data:image/png;base64,"))) is not None


async def test_generation_refusals_are_swarmui_errors(data_dir: Path) -> None:
    async with run_fake_comfyui(models=MODEL) as fake, pool_server(data_dir, [fake.url]) as pool:
        assert "No model selected" in await pool.api.error("GenerateText2Image", images=1, prompt="x")
        assert await pool.api.error("GenerateText2Image", images=1, model="sd15", steps="many") == (
            "Invalid value for parameter Steps: Invalid integer value for param Steps - 'many' - must be a valid "
            "integer (eg '0', '3', '-5', etc)")
        missing = await pool.api.error("GenerateText2Image", images=1, model="nope")
        assert missing.startswith("Invalid value for parameter Model: Invalid model value for param Model - 'nope' "
                                  "- are you sure that model name is correct? Backends refused")
        assert "backend #0 (comfy 0): missing model 'nope'" in missing
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
        assert len({m["request_id"] for m in images}) == 1  # one id for the request, as SwarmUI's


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


BAD_INPUT = [
    ({"model": "../../sd15.safetensors"}, "Invalid value for parameter Model: Invalid model value for param Model - "
                                          "'../../sd15.safetensors' - are you sure that model name is correct?"),
    ({"model": "sd15", "sampler": "warp_drive"}, "Invalid value for parameter Sampler: Invalid value for param "
                                                 "Sampler - 'warp_drive' - must be one of: `euler`, "),
    ({"model": "sd15", "scheduler": "sometimes"}, "Invalid value for parameter Scheduler: Invalid value for param "
                                                  "Scheduler - 'sometimes' - must be one of: `simple`, "),
    ({"model": "sd15", "width": 100000}, "Invalid value for parameter Width: Invalid integer value for param Width - "
                                         "'100000' - must be between 64 and 16384"),
    ({"model": "sd15", "height": 32}, "Invalid value for parameter Height: Invalid integer value for param Height - "
                                      "'32' - must be between 64 and 16384"),
    ({"model": "sd15", "steps": -1}, "Invalid value for parameter Steps: Invalid integer value for param Steps - "
                                     "'-1' - must be between 0 and 500"),
    ({"model": "sd15", "seed": 2**63}, "Invalid value for parameter Seed: Invalid integer value for param Seed - "
                                       f"'{2**63}' - must be a valid integer"),
    ({"model": "sd15", "seed": -2}, "Invalid value for parameter Seed: Invalid integer value for param Seed - '-2' - "
                                    "must be between -1 and 9223372036854775807"),
    ({"model": "sd15", "cfgscale": 101}, "Invalid value for parameter CFG Scale: Invalid decimal value for param CFG "
                                         "Scale - '101' - must be between 0 and 100"),
]


async def test_bad_input_gets_swarmuis_texts_queues_nothing_and_leaves_the_backend_alone(data_dir: Path) -> None:
    async with run_fake_comfyui(models=MODEL) as fake, pool_server(data_dir, [fake.url]) as pool:
        for params, text in BAD_INPUT:
            error = await pool.api.error("GenerateText2Image", images=1, **params)
            assert error.startswith(text), (params, error)
        assert await pool.api.error("GenerateText2Image", images=0, model="sd15") == (
            "Invalid value for parameter Images: Invalid integer value for param Images - '0' - must be between 1 "
            "and 10000")
        headers = {"X-SWARM-USER_ID": "../escape"}
        session = (await pool.api.http.post("/API/GetNewSession", json={}, headers=headers)).json()["session_id"]
        answer = await pool.api.http.post("/API/GenerateText2Image", headers=headers,
                                          json={"session_id": session, "images": 1, "model": "sd15"})
        assert "cannot name an output folder" in answer.json()["error"]
        assert fake.calls_to("/prompt", "POST") == []
        backend = (await pool.api.ok("ListBackends"))[str(pool.backend_ids[0])]
        assert backend["status"] == "running" and backend["usages"] == 0
        assert not (data_dir / "Output").exists() or not any((data_dir / "Output").rglob("*.png"))


async def test_the_view_route_serves_only_the_callers_own_images_inside_their_folder(data_dir: Path) -> None:
    async with run_fake_comfyui(models=MODEL) as fake, pool_server(data_dir, [fake.url]) as pool, \
            httpx.AsyncClient(base_url=pool.url) as http:
        (url,) = (await pool.api.ok("GenerateText2Image", images=1, model="sd15", prompt="a/../b"))["images"]
        assert "/../" not in url and (await http.get(f"/{url}")).status_code == 200
        outside = data_dir / "secret.png"
        outside.write_bytes(b"\x89PNG not yours")
        user_folder = data_dir / "Output" / "local"
        (user_folder / "link.png").symlink_to(outside)
        (user_folder / "notes.html").write_text("<script>alert(1)</script>")
        for path, status, error_id in [
            ("/View/local/%2e%2e/secret.png", 400, "bad_path"),
            ("/View/local/raw/..%2f..%2f..%2fsecret.png", 400, "bad_path"),
            ("/View/local/link.png", 400, "bad_path"),
            ("/View/local/notes.html", 404, "file_not_found"),
            ("/View/local/raw/none.png", 404, "file_not_found"),
        ]:
            answer = await http.get(path)
            assert (answer.status_code, answer.json()["error_id"]) == (status, error_id), path
            assert answer.headers["x-content-type-options"] == "nosniff"


async def test_select_model_runs_a_tiny_load_on_each_comfyui_and_free_memory_forgets_it(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.02, models=MODEL) as one, \
            run_fake_comfyui(job_seconds=0.02, models=MODEL) as two, \
            pool_server(data_dir, [one.url, two.url]) as pool:
        assert await pool.api.ok("SelectModel", model="sd15") == {"success": True}
        for fake in (one, two):
            (call,) = fake.calls_to("/prompt", "POST")
            graph = call.body["prompt"]
            assert graph["4"]["inputs"]["ckpt_name"] == "sd15.safetensors"
            assert graph["3"]["inputs"]["steps"] == 1 and graph["9"]["class_type"] == "PreviewImage"
        listed = await pool.api.ok("ListBackends", full_data=True)
        assert {entry["current_model"] for entry in listed.values()} == {"sd15.safetensors"}
        assert await pool.api.error("SelectModel", model="nope") == "Model not found."
        assert await pool.api.ok("FreeBackendMemory", system_ram=True, backend=str(pool.backend_ids[0])) == \
            {"result": True, "count": 1}
        listed = await pool.api.ok("ListBackends", full_data=True)
        assert [listed[str(i)]["current_model"] for i in pool.backend_ids] == [None, "sd15.safetensors"]
