"""The ComfyUI-compatible pool in front of fake ComfyUIs: prompts spread over backends, events
relayed in ComfyUI's order and shapes, files and history routed to the backend that holds them,
and a backend lost mid-prompt."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest

from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.clients.comfyui import BinaryEvent, ComfyClient
from swarmkeeper.dispatch.pool.relay import STATUS_TEXT
from swarmkeeper.dispatch.pool.validate import validate
from swarmkeeper_doubles.fake_comfyui import png_size, run_fake_comfyui
from tests.comfy_peer import greeted_events, invert_graph, ws_image_graph
from tests.pool_support import (
    events_until_done,
    is_done_marker,
    kind_of,
    pool_server,
    prompt_of,
    terminal_events,
)


async def direct_kinds(url: str, graph: dict, **flags: bool) -> list[str]:
    async with ComfyClient(url) as comfy, greeted_events(comfy, uuid.uuid4().hex, **flags) as events:
        queued = await comfy.queue_prompt(graph, events.client_id)
        return [kind_of(e) for e in await events_until_done(events, {queued["prompt_id"]})]


async def pooled_kinds(comfy: ComfyClient, graph: dict, **flags: bool) -> list[str]:
    async with greeted_events(comfy, uuid.uuid4().hex, **flags) as events:
        queued = await comfy.queue_prompt(graph, events.client_id)
        return [kind_of(e) for e in await events_until_done(events, {queued["prompt_id"]})]


async def test_a_prompt_sends_the_same_events_as_a_direct_comfyui(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.02) as fake, pool_server(data_dir, [fake.url]) as pool, \
            pool.comfy() as comfy:
        for graph_of, flags in ((invert_graph, {}), (ws_image_graph, {}),
                                (ws_image_graph, {"supports_preview_metadata": True})):
            direct = await direct_kinds(fake.url, graph_of(0x102030 + len(flags)), **flags)
            pooled = await pooled_kinds(comfy, graph_of(0x405060 + len(flags)), **flags)
            assert pooled == direct, graph_of.__name__
        assert "binary1" in direct or "binary4" in direct


async def test_a_prompt_id_that_json_escapes_gets_every_event(data_dir: Path) -> None:
    """The pool routes ``progress_state`` by the id its frame starts with; an id written escaped is
    routed by parsing the frame instead."""
    async with run_fake_comfyui(job_seconds=0.01) as fake, pool_server(data_dir, [fake.url]) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "escapes") as events:
        direct = await direct_kinds(fake.url, invert_graph(0x700001))
        queued = await comfy.queue_prompt(invert_graph(0x700002), "escapes", prompt_id='a"b\\c')
        assert queued["prompt_id"] == 'a"b\\c'
        pooled = [kind_of(e) for e in await events_until_done(events, {'a"b\\c'})]
        assert pooled == direct and "progress_state" in pooled


async def test_prompts_spread_over_every_backend_and_files_come_back_through_the_pool(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.05) as one, run_fake_comfyui(job_seconds=0.05) as two, \
            pool_server(data_dir, [one.url, two.url]) as pool, pool.comfy() as comfy, \
            greeted_events(comfy, "spread") as events:
        colours = [0x100000 + n for n in range(8)]
        ids = [(await comfy.queue_prompt(invert_graph(c), "spread"))["prompt_id"] for c in colours]
        seen = await events_until_done(events, set(ids))
        assert terminal_events(seen) == {prompt_id: ["execution_success"] for prompt_id in ids}
        assert len(one.calls_to("/prompt", "POST")) >= 2 and len(two.calls_to("/prompt", "POST")) >= 2
        names = set()
        for prompt_id in ids:
            entry = (await comfy.history(prompt_id))[prompt_id]
            assert entry["prompt"][1] == prompt_id and entry["prompt"][3]["client_id"] == "spread"
            image = entry["outputs"]["3"]["images"][0]
            names.add(image["filename"])
            data = await comfy.view(image["filename"], image["subfolder"], image["type"])
            assert png_size(data) == (64, 64)
            assert data[-40:] != b""  # a real PNG, fetched from the backend that made it
        assert len(names) == len(ids)  # same-named files of two backends are told apart


async def test_every_image_fetched_is_the_one_its_prompt_made(data_dir: Path) -> None:
    """Two backends both make probe_00001_.png; each prompt's /view returns its own colour."""
    async with run_fake_comfyui(job_seconds=0.05) as one, run_fake_comfyui(job_seconds=0.05) as two, \
            pool_server(data_dir, [one.url, two.url], over_queue=0) as pool, pool.comfy() as comfy, \
            greeted_events(comfy, "colours") as events:
        ids = [(await comfy.queue_prompt(invert_graph(c, prefix="same"), "colours"))["prompt_id"] for c in (1, 2)]
        await events_until_done(events, set(ids))
        for prompt_id, colour in zip(ids, (1, 2), strict=True):
            image = (await comfy.history(prompt_id))[prompt_id]["outputs"]["3"]["images"][0]
            data = await comfy.view(image["filename"], image["subfolder"], image["type"])
            direct = [f for f in (one, two) if f.engine.files.data.get(("output", "", image["filename"]))]
            assert data in [fake.engine.files.get("output", "", name) for fake in (one, two)
                            for name in (image["filename"], image["filename"].replace("-b1", ""))]
            assert direct or "-b" in image["filename"]
            inverted = 0xFFFFFF ^ colour
            assert bytes(((inverted >> 16) & 255, (inverted >> 8) & 255, inverted & 255)) in _pixels(data)


def deep_graph(depth: int) -> dict:
    """EmptyImage, then ``depth`` ImageInverts in a chain, then PreviewImage."""
    graph = {str(n): {"class_type": "ImageInvert", "inputs": {"image": [str(n + 1), 0]}} for n in range(1, depth)}
    graph[str(depth)] = {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}
    graph["0"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    return graph


@pytest.mark.parametrize("remaining", [0, 7, 10_000])
def test_the_status_text_is_what_json_dumps_writes(remaining: int) -> None:
    message = {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}}}
    assert STATUS_TEXT.format(remaining) == json.dumps(message)


def test_validation_of_a_very_deep_graph_needs_no_deep_stack() -> None:
    from swarmkeeper_doubles.fake_comfyui import fixture

    verdict = validate({"prompt": deep_graph(20_000)}, fixture("object_info_noapi.json"))
    assert verdict.error is None and verdict.outputs == ["0"]


def _pixels(png: bytes) -> bytes:
    import zlib

    start = png.index(b"IDAT") + 4
    length = int.from_bytes(png[start - 8:start - 4], "big")
    return zlib.decompress(png[start:start + length])


async def test_bad_input_gets_comfyuis_answers_and_reaches_no_backend(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.01) as fake, pool_server(data_dir, [fake.url]) as pool, \
            httpx.AsyncClient(base_url=pool.comfy_url, timeout=30) as http:
        def post(body: object) -> object:
            return http.post("/prompt", json=body)

        answer = await http.post("/prompt", content=b"{not json")
        assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_prompt"
        assert (await post({})).json()["error"]["type"] == "no_prompt"
        unknown = (await post({"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}})).json()
        assert unknown["error"]["message"] == "Cannot execute because node NoSuchNode does not exist."
        cycle = invert_graph(5)
        cycle["1"] = {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}}
        looped = await post({"prompt": cycle})
        assert looped.status_code == 400 and looped.json()["error"]["message"] == "Dependency cycle detected"
        broken = invert_graph(5)
        broken["2"]["inputs"]["image"] = ["99", 0]
        del broken["4"]  # the only output depends on the broken link
        missing_link = await post({"prompt": broken})
        assert missing_link.status_code == 400 and missing_link.json()["error"]["type"] == \
            "prompt_outputs_failed_validation"
        assert missing_link.json()["node_errors"]["2"]["errors"][0]["type"] == "exception_during_validation"
        huge = invert_graph(5, size=100_000)
        errors = (await post({"prompt": huge})).json()["node_errors"]["1"]["errors"]
        assert errors[0]["type"] == "value_bigger_than_max"
        no_output = {"1": invert_graph(5)["1"]}
        assert (await post({"prompt": no_output})).json()["error"]["type"] == "prompt_no_outputs"
        not_image = await http.post("/upload/image", files={"image": ("bad.png", b"hello", "image/png")})
        assert not_image.status_code == 400
        for query, status in (({"filename": "../x.png"}, 400), ({"filename": "x.png", "subfolder": "../.."}, 403),
                              ({"filename": ""}, 404), ({"filename": "/etc/passwd"}, 400)):
            assert (await http.get("/view", params=query)).status_code == status
        assert [c.route for c in fake.calls if c.route in ("/upload/image", "/view")] == []
        assert fake.calls_to("/prompt", "POST") == []
        assert (await http.get("/ws")).status_code == 400


async def test_uploads_go_to_every_backend_under_one_name(data_dir: Path) -> None:
    from swarmkeeper_doubles.fake_comfyui import encode_png

    async with run_fake_comfyui() as one, run_fake_comfyui() as two, \
            pool_server(data_dir, [one.url, two.url]) as pool, pool.comfy() as comfy:
        png = encode_png(8, 8, 0x123456)
        one.engine.files.upload("input", "", "in.png", b"other content", False)  # one already has an in.png
        stored = await comfy.upload_image(png, "in.png")
        assert stored["name"] == "in (1).png"
        assert one.engine.files.get("input", "", "in (1).png") == png
        assert two.engine.files.get("input", "", "in (1).png") == png


async def test_a_model_goes_where_it_is_and_nowhere_else(data_dir: Path) -> None:
    graph = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
             "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    async with run_fake_comfyui(models={"checkpoints": ["b.safetensors"]}) as has_b, \
            run_fake_comfyui(models={"checkpoints": ["a.safetensors"]}) as has_a, \
            pool_server(data_dir, [has_b.url, has_a.url]) as pool, pool.comfy() as comfy, \
            greeted_events(comfy, "models") as events:
        ids = [(await comfy.queue_prompt(graph, "models"))["prompt_id"] for _ in range(3)]
        await events_until_done(events, set(ids))
        assert len(has_a.calls_to("/prompt", "POST")) == 3 and has_b.calls_to("/prompt", "POST") == []
        assert pool.services.registry.get(pool.backend_ids[1]).backend.current_model == "a.safetensors"  # type: ignore[union-attr]
        pinned = ComfyClient(pool.comfy_url, headers={"X-Swarm-Backend-ID": str(pool.backend_ids[0])})
        async with pinned:
            answer = await httpx.AsyncClient().post(f"{pool.comfy_url}/prompt", json={"prompt": graph},
                                                    headers={"X-Swarm-Backend-ID": str(pool.backend_ids[0])})
        body = answer.json()
        assert answer.status_code == 400
        assert body["error"]["message"] == "No backends match the settings of the request given!"
        assert f"backend #{pool.backend_ids[0]} (comfy {pool.backend_ids[0]}): missing model 'a.safetensors'" in \
            body["error"]["details"]
        assert f"backend #{pool.backend_ids[1]} (comfy {pool.backend_ids[1]}): not the requested backend" in \
            body["error"]["details"]


async def test_a_backend_dying_mid_prompt_fails_that_prompt_and_reruns_the_ones_it_had_not_started(
        data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.3, crash_after=2) as dying, \
            run_fake_comfyui(job_seconds=0.2) as healthy, \
            pool_server(data_dir, [dying.url, healthy.url], over_queue=2) as pool, pool.comfy() as comfy, \
            greeted_events(comfy, "crash") as events:
        ids = [(await comfy.queue_prompt(invert_graph(0x300000 + n), "crash"))["prompt_id"] for n in range(6)]
        seen = await events_until_done(events, set(ids))
        outcomes = terminal_events(seen)
        assert sorted(len(kinds) for kinds in outcomes.values()) == [1] * 6  # nothing lost, nothing twice
        failed = [p for p, kinds in outcomes.items() if kinds == ["execution_error"]]
        assert len(failed) == 1
        error = next(e for e in seen if not isinstance(e, BinaryEvent) and e["type"] == "execution_error")
        assert error["data"]["exception_type"] == "swarmkeeper.BackendLost"
        reran = {c.body["prompt_id"] for c in healthy.calls_to("/prompt", "POST")} & \
            {c.body["prompt_id"] for c in dying.calls_to("/prompt", "POST")}
        assert reran and failed[0] not in reran  # the queued one ran elsewhere; the running one did not
        assert all(outcomes[p] == ["execution_success"] for p in ids if p not in failed)
        history = (await comfy.history(failed[0]))[failed[0]]
        assert history["status"]["status_str"] == "error"
        await pool.api.wait_status(pool.backend_ids[0], "errored", timeout=10)


async def test_a_dropped_event_socket_reconnects_and_every_prompt_ends_once(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.3) as fake, pool_server(data_dir, [fake.url], over_queue=1) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "drop") as events:
        ids = [(await comfy.queue_prompt(invert_graph(0x600000 + n), "drop"))["prompt_id"] for n in range(3)]
        async with asyncio.timeout(10):
            while kind_of(await events.recv()) != "execution_start":
                pass
        (link_sid, link), = [(sid, c) for sid, c in fake.engine.clients.items() if sid.startswith("swarmkeeper-")]
        await link.socket.close()  # the backend drops the pool's event socket mid-prompt
        seen = await events_until_done(events, set(ids))
        assert terminal_events(seen) == {p: ["execution_success"] for p in ids}
        assert sorted(prompt_of(e) for e in seen if is_done_marker(e)) == sorted(ids)  # each done marker once
        assert fake.engine.clients[link_sid] is not link  # the same client id, a new socket
        listing = await pool.api.ok("ListBackends")
        assert listing[str(pool.backend_ids[0])]["status"] == "running"


async def test_queue_interrupt_and_counts_while_busy(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=1.0) as fake, pool_server(data_dir, [fake.url], over_queue=0) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "busy") as events:
        running = (await comfy.queue_prompt(invert_graph(0x500001), "busy"))["prompt_id"]
        waiting = (await comfy.queue_prompt(invert_graph(0x500002), "busy"))["prompt_id"]
        async with asyncio.timeout(10):
            while kind_of(event := await events.recv()) != "execution_start":
                pass
        assert prompt_of(event) == running
        queue = await comfy.get_queue()
        assert [item[1] for item in queue["queue_running"]] == [running]
        assert [item[1] for item in queue["queue_pending"]] == [waiting]
        assert (await comfy.get_prompt_info())["exec_info"]["queue_remaining"] == 2
        listing = await pool.api.ok("ListBackends")
        entry = listing[str(pool.backend_ids[0])]
        assert (entry["jobs_in_flight"], entry["jobs_queued"], entry["usages"]) == (1, 0, 1)
        assert entry["last_used"] is not None
        status = await pool.api.ok("GetCurrentStatus")  # pool prompts belong to no session
        assert status["status"]["waiting_gens"] == 0
        await comfy.delete_queued([waiting])
        await comfy.interrupt(running)
        seen = await events_until_done(events, {running})
        assert terminal_events(seen) == {running: ["execution_interrupted"]}
        assert (await comfy.get_queue()) == {"queue_running": [], "queue_pending": []}
        assert await comfy.history(waiting) == {}
        assert fake.calls_to("/prompt", "POST")[-1].body["prompt_id"] == running


async def test_the_pool_is_under_comfybackenddirect_on_the_main_port_too(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.01) as fake, pool_server(data_dir, [fake.url]) as pool, \
            ComfyClient(f"{pool.url}/ComfyBackendDirect") as direct, greeted_events(direct, "main-port") as events:
            queued = await direct.queue_prompt(invert_graph(0x600000), "main-port")
            seen = await events_until_done(events, {queued["prompt_id"]})
            assert terminal_events(seen) == {queued["prompt_id"]: ["execution_success"]}
            info = await direct.object_info("EmptyImage")
            assert list(info) == ["EmptyImage"]
            assert (await direct.system_stats())["devices"][0]["name"].startswith("backend #0")
            assert "checkpoints" in await direct.models()


async def test_no_running_backend_refuses_at_once(data_dir: Path) -> None:
    async with run_fake_comfyui() as fake, pool_server(data_dir, [fake.url]) as pool, \
            httpx.AsyncClient(base_url=pool.comfy_url) as http:
        await pool.api.ok("ToggleBackend", backend_id=pool.backend_ids[0], enabled=False)
        await pool.api.wait_status(pool.backend_ids[0], str(BackendStatus.DISABLED))
        answer = await http.post("/prompt", json={"prompt": invert_graph(1)})
        assert answer.status_code == 400 and answer.json()["error"]["message"] == "No backends available!"
        assert fake.calls_to("/prompt", "POST") == []
