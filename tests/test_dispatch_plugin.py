"""A backend type that runs prompts plugs in without touching dispatch: ``tests/prompt_backend.py``
says so through ``Backend.prompt_target`` and the pool sends it prompts, follows their events,
reads their history and files, and gives its refusal when it takes none."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from swarmkeeper.backends.prompts import PIN_HEADER
from swarmkeeper.clients.errors import ComfyRequestError
from swarmkeeper.dispatch.requests import Refusal
from swarmkeeper.dispatch.targets import Targets
from swarmkeeper_doubles.fake_comfyui import png_size, run_fake_comfyui
from tests.comfy_peer import greeted_events, invert_graph
from tests.dispatch_support import fake_record
from tests.pool_support import PoolServer, events_until_done, terminal_events, write_backends_settings
from tests.ports import free_port
from tests.prompt_backend import REFUSAL
from tests.servers import DUMMY_TYPES, APIClient, on_loopback, test_config


@contextlib.asynccontextmanager
async def worker_pool(data_dir: Path, address: str, *node_lists: str) -> AsyncIterator[PoolServer]:
    """The server with the plug-in type loaded, one worker per node-list mode (all running), the
    pool on its own port."""
    write_backends_settings(data_dir, MaxBackendInitAttempts=0)
    port = free_port()
    config = test_config(data_dir, comfy_port=port, backend_type_modules=(*DUMMY_TYPES, "tests.prompt_backend"))
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        api = APIClient(http, server.services)
        ids = []
        for mode in node_lists:
            backend_id = int((await api.ok("AddNewBackend", type_id="test_prompt_worker"))["id"])
            await api.ok("EditBackend", backend_id=backend_id, title=f"worker {mode}",
                         settings={"Address": address, "NodeList": mode})
            await api.wait_status(backend_id, "running", timeout=30)
            ids.append(backend_id)
        yield PoolServer(server.url, f"http://127.0.0.1:{port}", api, ids)


@pytest.mark.parametrize("node_list", ["own", "ask"])
async def test_a_plug_in_type_runs_pool_prompts(data_dir: Path, node_list: str) -> None:
    async with run_fake_comfyui(job_seconds=0.02) as fake, worker_pool(data_dir, fake.url, node_list) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "plugged") as events:
        async with asyncio.timeout(30):  # "ask": its node list is asked of it in the background first
            while "EmptyImage" not in await comfy.object_info():
                await asyncio.sleep(0.05)
        queued = await comfy.queue_prompt(invert_graph(0x314159), "plugged")
        prompt_id = queued["prompt_id"]
        seen = await events_until_done(events, {prompt_id})
        assert terminal_events(seen) == {prompt_id: ["execution_success"]}
        assert [call.body["prompt_id"] for call in fake.calls_to("/prompt", "POST")] == [prompt_id]
        image = (await comfy.history(prompt_id))[prompt_id]["outputs"]["3"]["images"][0]
        assert png_size(await comfy.view(image["filename"], image["subfolder"], image["type"])) == (64, 64)


async def test_a_plug_in_type_that_takes_no_prompts_gives_its_reason(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.01) as fake, worker_pool(data_dir, fake.url, "own", "none") as pool:
        taker, refuser = pool.backend_ids
        async with pool.comfy(**{PIN_HEADER: str(refuser)}) as pinned:
            with pytest.raises(ComfyRequestError) as refused:
                await pinned.queue_prompt(invert_graph(0x271828), "pinned")
        assert refused.value.status == 400 and refused.value.error_type == "no_backends"
        assert REFUSAL in refused.value.body["error"]["details"]
        assert fake.calls_to("/prompt", "POST") == []
        async with pool.comfy(**{PIN_HEADER: str(taker)}) as comfy, greeted_events(comfy, "taken") as events:
            queued = await comfy.queue_prompt(invert_graph(0x271829), "taken")
            seen = await events_until_done(events, {queued["prompt_id"]})
        assert terminal_events(seen) == {queued["prompt_id"]: ["execution_success"]}


def test_a_type_that_gives_no_target_runs_no_prompt() -> None:
    record = fake_record(1)
    assert Targets().of(record) is None
    assert Targets().info_of(record) == Refusal("a fake backend cannot run ComfyUI prompts")
