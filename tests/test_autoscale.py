"""The autoscaling backend end to end: start scripts that launch fake ComfyUIs and swarmkeeper workers
on loopback, a master server on loopback, and nothing left running afterwards."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from swarmkeeper.backends.autoscale import AutoScaler
from swarmkeeper.backends.demand import Demand
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.config import ServerConfig
from swarmkeeper.dispatch.pool.routes import POOL_KEY
from swarmkeeper.dispatch.requests import Request
from tests.autoscale_support import (
    FAST,
    chained_worker_script,
    comfy_worker_script,
    none_left,
    swarm_worker_script,
    swarmui_backends_fds,
    wait_for,
    workers_of,
)
from tests.comfy_peer import invert_graph
from tests.metrics_support import scrape, value
from tests.servers import APIClient, on_loopback, test_config


def master(tmp_path: Path, script: Path, **settings: object) -> ServerConfig:
    data = tmp_path / "master"
    data.mkdir()
    (data / "Backends.fds").write_text(swarmui_backends_fds(script, **settings))
    return test_config(data, autoscale=FAST, comfy_port=None)


def running_workers(kind: str, count: int = 1):  # type: ignore[no-untyped-def]
    def check(listing: dict) -> bool:  # type: ignore[type-arg]
        found = [w for w in workers_of(listing) if w["type"] == kind and w["status"] == "running"]
        return len(found) == count
    return check


async def test_a_swarmui_file_loads_and_min_workers_serve_the_pool(tmp_path: Path) -> None:
    script = comfy_worker_script(tmp_path)
    config = master(tmp_path, script, MinBackends=1, ConnectionAttemptTimeoutSeconds=5)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        listing = await wait_for(api, running_workers("comfyui_api"), what="a running ComfyUI worker")
        (worker,) = workers_of(listing)
        assert worker["title"] == "[Remote from 0: Farm] ComfyUI worker #1"
        parent = listing["0"]
        assert (parent["type"], parent["status"], parent["can_load_models"]) == ("autoscalingbackend", "running", False)
        async with ComfyClient(server.url + "/ComfyBackendDirect", timeout=30) as comfy:
            queued = await comfy.queue_prompt(invert_graph(7), client_id="autoscale-test")
            for _ in range(300):
                if (await comfy.history(queued["prompt_id"])).get(queued["prompt_id"]):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the prompt never finished on the worker")
        scaler = server.services.registry.get(0).backend  # type: ignore[union-attr]
        assert isinstance(scaler, AutoScaler) and scaler.launches == 1  # nothing launched twice
        assert scaler.host.status_reason.startswith("Holding. 1 of 5 workers running; 0 requests waiting")  # type: ignore[attr-defined]
    await none_left(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL])  # alive but silent; gone
async def test_a_worker_that_stops_answering_pings_is_replaced(tmp_path: Path, sig: signal.Signals) -> None:
    script = comfy_worker_script(tmp_path)
    config = master(tmp_path, script, MinBackends=1, ConnectionAttemptTimeoutSeconds=1, MinWaitAfterFailure=0)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await wait_for(api, running_workers("comfyui_api"), what="a running worker")
        scaler = server.services.registry.get(0).backend  # type: ignore[union-attr]
        assert isinstance(scaler, AutoScaler)
        (first,) = scaler.workers.values()
        pid = first.handle.process.pid  # type: ignore[attr-defined]
        psutil.Process(pid).send_signal(sig)
        await wait_for(api, lambda listing: any(w["title"].endswith("#2") and w["status"] == "running"
                                                for w in workers_of(listing)), what="worker #2 replacing #1")
        for _ in range(200):  # the lost worker's launch is ended (after its grace, SIGTERM, then SIGKILL)
            if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker that stopped answering was left running")
        assert scaler.launches == 2
        samples = await scrape(api)
        assert value(samples, "swarmkeeper_autoscale_stops_total", cause="ping") == 1
        assert value(samples, "swarmkeeper_autoscale_launches_total", outcome="ready") == 2
        assert value(samples, "swarmkeeper_autoscale_worker_ready_seconds_count") == 2
    await none_left(tmp_path)


async def test_swarmkeeper_workers_are_pinged_then_stopped_when_idle(tmp_path: Path) -> None:
    script = swarm_worker_script(tmp_path, control_minutes=0.05)  # 3 s without a ping ends a worker
    config = master(tmp_path, script, MinQueuedBeforeExpand=1, MinIdleTime=0.2, MinWaitBetweenStop=0,
                          ConnectionAttemptTimeoutSeconds=5)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await api.wait_status(0, "running")
        board = server.services.manager.services.demand
        board.source = lambda: Demand(waiting=1, unmet=1)
        listing = await wait_for(api, running_workers("swarmswarmbackend"), what="a running swarmkeeper worker")
        (worker,) = workers_of(listing)
        assert worker["title"] == "[Remote from 0: Farm] Master Control Swarm Instance"
        address = worker["remote_address"]
        board.source = Demand
        await asyncio.sleep(4)  # longer than --require_control_within: the pings keep it alive
        async with httpx.AsyncClient(base_url=address, timeout=5) as direct:
            assert (await direct.post("/API/GetNewSession", json={})).status_code == 200
        await wait_for(api, lambda listing: not workers_of(listing), timeout=30, what="the idle worker stopped")
        await none_left(tmp_path)
        scaler = server.services.registry.get(0).backend  # type: ignore[union-attr]
        assert isinstance(scaler, AutoScaler) and scaler.launches == 1
        samples = await scrape(api)
        assert value(samples, "swarmkeeper_autoscale_stops_total", cause="idle") == 1
        assert "0 of 5 workers running" in server.services.registry.get(0).status_reason  # type: ignore[union-attr]


async def test_a_request_no_backend_can_take_waits_for_a_worker_started_for_it(tmp_path: Path) -> None:
    """From zero workers: the scheduler keeps the request waiting (the autoscaler can still grow), the
    waiting request no running backend can serve starts a worker below MinQueuedBeforeExpand, and the
    request is given that worker."""
    script = comfy_worker_script(tmp_path)
    config = master(tmp_path, script, MinBackends=0, MinQueuedBeforeExpand=10, ConnectionAttemptTimeoutSeconds=5)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await api.wait_status(0, "running")
        pool = server.services.extra[POOL_KEY]
        request = Request(check=lambda record: None)
        grant = await asyncio.wait_for(pool.scheduler.acquire(request), 30)
        assert grant.record.type.id == "comfyui_api"
        assert grant.record.title == "[Remote from 0: Farm] ComfyUI worker #1"
        pool.scheduler.release(grant.record)
        scaler = server.services.registry.get(0).backend  # type: ignore[union-attr]
        assert isinstance(scaler, AutoScaler) and scaler.launches == 1
    await none_left(tmp_path)


async def test_a_swarmkeeper_worker_s_backends_serve_the_master_s_pool(tmp_path: Path) -> None:
    """A Swarm worker is a control instance whose children stand for its backends: a prompt sent to
    the master's pool runs on the worker's ComfyUI; stopping the master stops the worker and its
    ComfyUI."""
    script = chained_worker_script(tmp_path)
    config = master(tmp_path, script, MinBackends=1, ConnectionAttemptTimeoutSeconds=5)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)

        def chained(listing: dict) -> bool:  # type: ignore[type-arg]
            return any(entry.get("remote_type") == "comfyui_api" and entry["status"] == "running"
                       for entry in listing.values())

        listing = await wait_for(api, chained, what="the worker's ComfyUI as a child of its control instance")
        (control,) = workers_of(listing)
        assert (control["type"], control["status"]) == ("swarmswarmbackend", "running")
        async with ComfyClient(server.url + "/ComfyBackendDirect", timeout=30) as comfy:
            for _ in range(300):  # a chained server's node list is asked for in the background
                if "EmptyImage" in await comfy.object_info():
                    break
                await asyncio.sleep(0.05)
            queued = await comfy.queue_prompt(invert_graph(9), client_id="autoscale-chain")
            for _ in range(300):
                if (await comfy.history(queued["prompt_id"])).get(queued["prompt_id"]):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the prompt never finished on the worker's ComfyUI")
    await none_left(tmp_path)
