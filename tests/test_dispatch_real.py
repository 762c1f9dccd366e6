"""The pool in front of two real ComfyUIs: a ComfyUI client library from PyPI (comfy-api-simplified,
used unchanged) sends 20 prompts at once, a backend killed mid-prompt, and the text-to-image graph
against a real ComfyUI's validation."""

from __future__ import annotations

import asyncio
import os
import signal
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from comfy_api_simplified import ComfyApiWrapper

from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.dispatch.graph import T2IParams, text_to_image
from swarmkeeper.dispatch.pool.core import Pool
from swarmkeeper.dispatch.pool.jobs import JobState
from swarmkeeper.dispatch.pool.validate import validate
from tests.comfy_peer import RealComfyUI, blur_graph, greeted_events, peer, start_real_comfyui, unique_color
from tests.pool_support import (
    BinaryEvent,
    events_until_done,
    is_done_marker,
    kind_of,
    pool_server,
    prompt_of,
    terminal_events,
)
from tests.ports import free_port

pytestmark = pytest.mark.comfyui


def titled_invert_graph(color: int) -> dict[str, Any]:
    """EmptyImage → ImageInvert → SaveImage, with the node titles comfy-api-simplified looks for."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color},
              "_meta": {"title": "Empty Image"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "pool"},
              "_meta": {"title": "Save Image"}},
    }


def first_pixel(png: bytes) -> int:
    """The first pixel of an 8-bit RGB PNG (as ComfyUI saves them) as 0xRRGGBB."""
    chunks, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at:at + 4], "big")
        if png[at + 4:at + 8] == b"IDAT":
            chunks.append(png[at + 8:at + 8 + length])
        at += 12 + length
    row = zlib.decompress(b"".join(chunks))
    return int.from_bytes(row[1:4], "big")


def close_colours(one: int, other: int) -> bool:
    """Equal but for ComfyUI's float rounding (at most 2 per channel)."""
    return all(abs(((one >> shift) & 255) - ((other >> shift) & 255)) <= 2 for shift in (0, 8, 16))


async def test_twenty_prompts_from_a_pypi_client_spread_over_two_real_comfyuis(
        data_dir: Path, real_comfyui: RealComfyUI, real_comfyui_2: RealComfyUI) -> None:
    async with pool_server(data_dir, [real_comfyui.url, real_comfyui_2.url]) as pool:
        colours = [unique_color() for _ in range(20)]
        api = ComfyApiWrapper(pool.comfy_url)  # the library, unchanged, pointed at the pool
        results = await asyncio.gather(*(asyncio.to_thread(api.queue_and_wait_images, titled_invert_graph(colour),
                                                           "Save Image") for colour in colours))
        for colour, images in zip(colours, results, strict=True):
            assert len(images) == 1  # fetched by the library through the pool's /view
            (png,) = images.values()
            assert close_colours(first_pixel(png), 0xFFFFFF ^ colour)
        ran = []
        for comfy in (real_comfyui, real_comfyui_2):
            async with ComfyClient(comfy.url) as direct:
                history = await direct.history()
            ran.append(sum(1 for entry in history.values()  # the shared ComfyUIs also ran other tests' graphs
                           if entry["prompt"][2].get("1", {}).get("inputs", {}).get("color") in colours))
        assert sum(ran) == 20 and min(ran) > 0, ran  # both backends ran some, none ran one twice


@pytest.fixture(scope="module")
def doomed_comfyui() -> Iterator[RealComfyUI]:
    """A real ComfyUI of its own, killed by the test that uses it."""
    port = free_port()
    comfy = start_real_comfyui(f"pytest-{os.getpid()}-{port}", port)  # reaped as an orphan if the run dies
    try:
        yield comfy
    finally:
        peer("stop", "--name", comfy.name, "--clean", timeout=60)


async def test_a_real_comfyui_killed_mid_prompt(data_dir: Path, doomed_comfyui: RealComfyUI,
                                                real_comfyui_2: RealComfyUI) -> None:
    async with pool_server(data_dir, [doomed_comfyui.url, real_comfyui_2.url]) as pool, pool.comfy() as comfy, \
            greeted_events(comfy, "kill") as events:
        jobs: Pool = pool.services.dispatch.pool
        ids = [(await comfy.queue_prompt(blur_graph(unique_color(), 768, 2), "kill"))["prompt_id"] for _ in range(4)]
        doomed_id = pool.backend_ids[0]
        on_doomed = [p for p in ids if jobs.jobs[p].backend_id == doomed_id]
        assert len(on_doomed) == 2
        before: list = []
        async with asyncio.timeout(120):
            while not (before and kind_of(before[-1]) == "execution_start" and prompt_of(before[-1]) in on_doomed):
                before.append(await events.recv())
        running = prompt_of(before[-1])
        assert jobs.jobs[running].state is JobState.RUNNING
        os.kill(doomed_comfyui.pid, signal.SIGKILL)
        finished = {prompt_of(e) for e in before if is_done_marker(e)}
        seen = before + await events_until_done(events, set(ids) - finished, timeout=240)
        outcomes = terminal_events(seen)
        assert {p: len(kinds) for p, kinds in outcomes.items()} == dict.fromkeys(ids, 1)  # none lost or twice
        assert outcomes[running] == ["execution_error"]
        error = next(e for e in seen if not isinstance(e, BinaryEvent) and e["type"] == "execution_error")
        assert error["data"]["exception_type"] == "swarmkeeper.BackendLost"
        assert all(outcomes[p] == ["execution_success"] for p in ids if p != running)
        queued_there = next(p for p in on_doomed if p != running)
        assert jobs.jobs[queued_there].backend_id == pool.backend_ids[1]  # re-run on the other backend
        async with ComfyClient(real_comfyui_2.url) as survivor:
            assert queued_there in await survivor.history(queued_there)


async def test_the_text_to_image_graph_passes_a_real_comfyuis_validation_but_for_the_checkpoint(
        real_comfyui: RealComfyUI) -> None:
    graph = text_to_image(T2IParams(prompt="a photo", negativeprompt="blurry", steps=4, seed=1, width=512,
                                    height=768, sampler="euler_ancestral", scheduler="karras"), "missing.safetensors")
    async with httpx.AsyncClient(base_url=real_comfyui.url) as http:
        answer = await http.post("/prompt", json={"prompt": graph})
        info = (await http.get("/object_info")).json()
    body = answer.json()
    assert answer.status_code == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
    assert list(body["node_errors"]) == ["4"]  # every other node and input was accepted
    assert [e["type"] for e in body["node_errors"]["4"]["errors"]] == ["value_not_in_list"]
    assert body["node_errors"]["4"]["errors"][0]["extra_info"]["input_name"] == "ckpt_name"
    ours = validate({"prompt": graph}, info)
    assert ours.error is not None and list(ours.node_errors) == ["4"]  # the pool's validation agrees
    assert ours.node_errors["4"]["errors"][0]["type"] == "value_not_in_list"
