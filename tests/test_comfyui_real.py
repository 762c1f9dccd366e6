"""The client against a real ComfyUI (installed by scripts/comfyui-peer), and the fake held to it.

The comparison tests run the same requests on the real server and on the fake and assert the
same event types in the same order and the same JSON key sets, so the fake used by the fast tests
provably answers as ComfyUI does.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from swarmkeeper.clients.comfyui import BinaryEvent, ComfyClient, ComfyEvent
from swarmkeeper.clients.errors import ComfyRequestError
from swarmkeeper_doubles.fake_comfyui import FakeComfyUI, png_size, run_fake_comfyui
from tests.comfy_peer import (
    PEER,
    RealComfyUI,
    blur_graph,
    collect,
    event_type,
    greeted_events,
    invert_graph,
    recorded_types,
    run_prompt,
    unique_color,
    ws_image_graph,
)

pytestmark = pytest.mark.comfyui


@pytest.fixture
async def real(real_comfyui: RealComfyUI) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(real_comfyui.url, timeout=60) as client:
        yield client


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeComfyUI]:
    async with run_fake_comfyui(job_seconds=0.02) as server:
        yield server


@pytest.fixture
async def fake(fake_server: FakeComfyUI) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(fake_server.url, timeout=10) as client:
        yield client


def types(events: list[ComfyEvent]) -> list[str]:
    return [event_type(e) for e in events]


def data_keys(events: list[ComfyEvent]) -> list[tuple[str, tuple[str, ...]]]:
    """Each event's type with the keys of its data, in order."""
    return [(event_type(e), () if isinstance(e, BinaryEvent) else tuple(sorted(e.get("data") or {}))) for e in events]


def shape(value: Any) -> Any:
    """The key structure of a JSON value: dicts by sorted keys, lists by their items' shapes."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


# --- the peer script ----------------------------------------------------------------------


def test_install_again_is_a_fast_noop() -> None:
    started = time.monotonic()
    done = subprocess.run([str(PEER), "install"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "already installed" in done.stdout
    assert time.monotonic() - started < 10


def test_path_names_both_launchers() -> None:
    done = subprocess.run([str(PEER), "path"], capture_output=True, text=True, timeout=30, check=True)
    paths = dict(line.split("=", 1) for line in done.stdout.splitlines())
    main = Path(paths["main"])
    assert main.name == "main.py" and main.is_file()
    assert (main.parent / "venv" / "bin" / "python3").resolve() == Path(paths["python"]).resolve()
    assert Path(paths["script"]).stat().st_mode & 0o111


def test_sigint_is_caught_not_ignored(real_comfyui: RealComfyUI) -> None:
    status = Path(f"/proc/{real_comfyui.pid}/status").read_text()
    masks = dict(line.split(":\t") for line in status.splitlines() if line.startswith(("SigCgt", "SigIgn")))
    caught, ignored = int(masks["SigCgt"], 16), int(masks["SigIgn"], 16)
    assert caught & (1 << 1)  # bit 1 is signal 2, SIGINT: python's KeyboardInterrupt handler
    assert not ignored & (1 << 1)


# --- the client against the real server ---------------------------------------------------


async def test_object_info_has_model_free_nodes(real: ComfyClient) -> None:
    info = await real.object_info()
    assert {"EmptyImage", "ImageInvert", "SaveImage", "SaveImageWebsocket"} <= info.keys()
    assert info["SaveImage"]["output_node"] is True


async def test_model_free_prompt_runs_in_recorded_order(real: ComfyClient) -> None:
    graph = invert_graph(unique_color())
    async with greeted_events(real, "real-order") as events:
        _, fresh = await run_prompt(real, events, graph)
        _, cached = await run_prompt(real, events, graph)
    assert types(fresh) == recorded_types("ws_invert_fresh.json")
    assert types(cached) == recorded_types("ws_invert_cached.json")
    saved = next(e for e in fresh if event_type(e) == "executed" and e["data"]["node"] == "3")
    image = saved["data"]["output"]["images"][0]
    png = await real.view(image["filename"], image["subfolder"], image["type"])
    assert png_size(png) == (64, 64)


async def test_free_returns(real: ComfyClient) -> None:
    assert await real.free(unload_models=True, free_memory=True) is None


async def test_unknown_node_is_invalid_prompt(real: ComfyClient) -> None:
    with pytest.raises(ComfyRequestError) as caught:
        await real.queue_prompt({"1": {"class_type": "NoSuchNode", "inputs": {}}}, "real")
    assert (caught.value.status, caught.value.error_type) == (400, "invalid_prompt")
    assert caught.value.message == "Cannot execute because node NoSuchNode does not exist."


# --- the fake answers as the real one does ------------------------------------------------


async def prompt_twice(comfy: ComfyClient, client_id: str) -> tuple[dict[str, Any], list[ComfyEvent], ...]:
    """A fresh then an identical (cached) prompt: answers, events and the history entry."""
    graph = invert_graph(unique_color())
    async with greeted_events(comfy, client_id) as events:
        answer, fresh = await run_prompt(comfy, events, graph)
        _, cached = await run_prompt(comfy, events, graph)
    entry = (await comfy.history(answer["prompt_id"]))[answer["prompt_id"]]
    return answer, fresh, cached, entry


async def test_fake_prompt_matches_real(real: ComfyClient, fake: ComfyClient) -> None:
    real_answer, real_fresh, real_cached, real_entry = await prompt_twice(real, "cmp-real")
    fake_answer, fake_fresh, fake_cached, fake_entry = await prompt_twice(fake, "cmp-fake")
    assert set(fake_answer) == set(real_answer)
    assert data_keys(fake_fresh) == data_keys(real_fresh)
    assert data_keys(fake_cached) == data_keys(real_cached)
    assert shape(fake_fresh) == shape(real_fresh)
    assert shape(fake_entry) == shape(real_entry)


async def test_fake_bystander_sees_what_real_one_does(real: ComfyClient, fake: ComfyClient) -> None:
    seen = {}
    for name, comfy in (("real", real), ("fake", fake)):
        async with greeted_events(comfy, f"own-{name}") as own, greeted_events(comfy, f"by-{name}") as other:
            await run_prompt(comfy, own, invert_graph(unique_color()))
            seen[name] = [await other.recv() for _ in range(3)]
    assert shape(seen["fake"]) == shape(seen["real"])
    assert types(seen["real"]) == ["status"] * 3


@pytest.mark.parametrize("flags", [{}, {"supports_preview_metadata": True}])
async def test_fake_ws_images_match_real(real: ComfyClient, fake: ComfyClient, flags: dict[str, bool]) -> None:
    seen = {}
    for name, comfy in (("real", real), ("fake", fake)):
        async with greeted_events(comfy, f"wsimg-{name}", **flags) as events:
            _, seen[name] = await run_prompt(comfy, events, ws_image_graph(unique_color()))
    assert data_keys(seen["fake"]) == data_keys(seen["real"])
    frames = {
        n: [(e.event_type, e.metadata.keys(), e.image_type) for e in s if isinstance(e, BinaryEvent)]
        for n, s in seen.items()
    }
    assert frames["fake"] == frames["real"]


async def interrupted_run(comfy: ComfyClient, client_id: str) -> list[ComfyEvent]:
    """A slow prompt interrupted while node 10 runs; all its events."""
    async with greeted_events(comfy, client_id) as events:
        queued = await comfy.queue_prompt(blur_graph(unique_color(), 1024, 3), client_id)
        seen: list[ComfyEvent] = []
        while not seen or event_type(seen[-1]) != "executing" or seen[-1]["data"]["node"] != "10":
            seen.append(await events.recv())
        # Into node 10's run: an interrupt sent at once can reach ComfyUI before it starts the node,
        # which then stops at node 10 instead of 11.
        await asyncio.sleep(0.2)
        await comfy.interrupt()
        return seen + await collect(events, queued["prompt_id"])


async def test_fake_interrupt_matches_real(real: ComfyClient) -> None:
    real_events = await interrupted_run(real, "int-real")
    async with run_fake_comfyui(job_seconds=2.0) as server, ComfyClient(server.url) as fake:
        fake_events = await interrupted_run(fake, "int-fake")
    assert data_keys(fake_events) == data_keys(real_events)
    assert types(real_events) == recorded_types("ws_slow_interrupt.json")


BAD_GRAPHS: list[dict[str, Any]] = [
    {"1": {"class_type": "NoSuchNode", "inputs": {}}},
    {"1": invert_graph(1)["1"]},
    {
        **invert_graph(1),
        "1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
    },
    {
        "1": {"class_type": "EmptyImage", "inputs": {"width": "abc", "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    },
    {"2": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "x"}}},
]


async def refusal(comfy: ComfyClient, graph: dict[str, Any]) -> ComfyRequestError:
    with pytest.raises(ComfyRequestError) as caught:
        await comfy.queue_prompt(graph, "bad")
    return caught.value


def error_types(error: ComfyRequestError) -> dict[str, list[str]]:
    return {node: sorted(e["type"] for e in info["errors"]) for node, info in error.node_errors.items()}


@pytest.mark.parametrize("graph", BAD_GRAPHS, ids=["unknown", "no-outputs", "too-small", "not-int", "dangling"])
async def test_fake_validation_errors_match_real(real: ComfyClient, fake: ComfyClient, graph: dict[str, Any]) -> None:
    real_error, fake_error = await refusal(real, graph), await refusal(fake, graph)
    assert (fake_error.status, fake_error.error_type) == (real_error.status, real_error.error_type)
    assert fake_error.message == real_error.message
    assert error_types(fake_error) == error_types(real_error)
    assert set(fake_error.body["error"]) == set(real_error.body["error"])


async def test_fake_runtime_error_matches_real(real: ComfyClient, fake: ComfyClient) -> None:
    seen = {}
    for name, comfy in (("real", real), ("fake", fake)):
        uploaded = await comfy.upload_image(b"not an image", "bad.png", subfolder=f"t{unique_color()}")
        graph = {
            "1": {"class_type": "LoadImage", "inputs": {"image": f"{uploaded['subfolder']}/{uploaded['name']}"}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        }
        async with greeted_events(comfy, f"err-{name}") as events:
            _, seen[name] = await run_prompt(comfy, events, graph)
    assert data_keys(seen["fake"]) == data_keys(seen["real"])


async def test_fake_info_routes_match_real(real: ComfyClient, fake: ComfyClient) -> None:
    assert await fake.features() == await real.features()
    assert await fake.models() == await real.models()
    assert await fake.models("checkpoints") == await real.models("checkpoints") == []
    assert shape(await fake.system_stats())["system"].keys() == shape(await real.system_stats())["system"].keys()
    assert shape(await fake.get_queue()) == shape(await real.get_queue())
    assert shape(await fake.get_prompt_info()) == shape(await real.get_prompt_info())
    assert await fake.object_info("NoSuchNode") == await real.object_info("NoSuchNode") == {}
    real_info, fake_info = await real.object_info(), await fake.object_info()
    for name in ("EmptyImage", "ImageInvert", "SaveImage", "PreviewImage", "SaveImageWebsocket"):
        assert fake_info[name]["input"] == real_info[name]["input"]
        assert fake_info[name]["output"] == real_info[name]["output"]
    for comfy in (real, fake):
        with pytest.raises(ComfyRequestError) as caught:
            await comfy.view("no-such-file.png")
        assert caught.value.status == 404
