"""Prompts sent to the pool before any node list is known anywhere: while an autoscaling backend has
no worker (MinBackends 0), the prompt is queued, a worker is started for it, and it is validated and
run there; a prompt that worker cannot run fails then with ComfyUI's validation text; while the only
backend's ComfyUI is not up yet, the prompt waits for it. (A prompt that nothing could ever run is
still refused at once: test_dispatch_pool.py::test_no_running_backend_refuses_at_once.)"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx

from swarmkeeper.backends.autoscale import AutoScaler
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.dispatch.needs import LATE_INVALID
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.autoscale_support import FAST, comfy_worker_script, none_left, swarmui_backends_fds, workers_of
from tests.comfy_peer import invert_graph
from tests.pool_support import write_backends_settings
from tests.servers import APIClient, on_loopback, test_config


def from_zero(tmp_path: Path) -> Any:
    data = tmp_path / "master"
    data.mkdir()
    fds_text = swarmui_backends_fds(comfy_worker_script(tmp_path), MinBackends=0, MinQueuedBeforeExpand=10,
                                    ConnectionAttemptTimeoutSeconds=5)
    (data / "Backends.fds").write_text(fds_text)
    return test_config(data, autoscale=FAST, comfy_port=None)


async def history_of(comfy: ComfyClient, prompt_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while not (entry := (await comfy.history(prompt_id)).get(prompt_id)):
            await asyncio.sleep(0.05)
    assert isinstance(entry, dict)
    return entry


async def test_a_pool_prompt_with_no_worker_starts_one_and_is_served(tmp_path: Path) -> None:
    async with on_loopback(from_zero(tmp_path)) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await api.wait_status(0, "running")
        assert workers_of(await api.ok("ListBackends", nonreal=True)) == []
        async with ComfyClient(server.url + "/ComfyBackendDirect", timeout=30) as comfy:
            assert await comfy.object_info() == {}  # no node list known anywhere
            queued = await comfy.queue_prompt(invert_graph(7), client_id="from-zero")
            entry = await history_of(comfy, queued["prompt_id"])
        assert entry["status"]["status_str"] == "success"
        assert entry["outputs"]["3"]["images"]
        assert entry["prompt"][4] == ["3", "4"]  # its outputs, known once validated on the worker
        scaler = server.services.registry.get(0).backend  # type: ignore[union-attr]
        assert isinstance(scaler, AutoScaler) and scaler.launches == 1
    await none_left(tmp_path)


async def test_a_prompt_the_worker_cannot_run_fails_once_its_node_list_is_known(tmp_path: Path) -> None:
    async with on_loopback(from_zero(tmp_path)) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await api.wait_status(0, "running")
        graph = {**invert_graph(8), "2": {"class_type": "NoSuchNode", "inputs": {"image": ["1", 0]}}}
        async with ComfyClient(server.url + "/ComfyBackendDirect", timeout=30) as comfy:
            queued = await comfy.queue_prompt(graph, client_id="from-zero")
            entry = await history_of(comfy, queued["prompt_id"])
        assert entry["status"]["status_str"] == "error"
        ((kind, data),) = entry["status"]["messages"]
        assert kind == "execution_error"
        assert data["exception_message"] == (LATE_INVALID + "Cannot execute because node NoSuchNode does not exist.: "
                                             "Node ID '#2'")
        pool = server.services.dispatch.pool
        assert pool.remaining == 0 and pool.scheduler.pending == []
    await none_left(tmp_path)


async def test_a_prompt_waits_for_the_only_backend_to_come_up(tmp_path: Path) -> None:
    held = socket.socket()  # bound, not listening: the backend's attempts are refused until the fake takes it
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    write_backends_settings(tmp_path, MaxBackendInitAttempts=100)
    async with on_loopback(test_config(tmp_path, comfy_port=None)) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        backend_id = int((await api.ok("AddNewBackend", type_id="comfyui_api"))["id"])
        await api.ok("EditBackend", backend_id=backend_id, title="later", settings={"Address": f"http://127.0.0.1:{port}"})
        await api.wait_status(backend_id, "waiting")
        async with ComfyClient(server.url + "/ComfyBackendDirect", timeout=30) as comfy:
            queued = await comfy.queue_prompt(invert_graph(9), client_id="later")
            held.close()
            async with run_fake_comfyui(port=port, job_seconds=0.01):
                entry = await history_of(comfy, queued["prompt_id"])
        assert entry["status"]["status_str"] == "success"
