"""The Ray provider against a real Ray head on loopback (two declared GPUs, one head for the module):
actors that run fake ComfyUIs scale from zero to the maximum, the next one waits for a GPU, idle ones
end; a worker killed with SIGKILL is replaced and leaves no process; detached workers are adopted by
a restarted swarmkeeper. And bad input: a clear reason, nothing left running."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from swarmkeeper.backends.autoscale import AutoScaler
from swarmkeeper.backends.autoscale_ray import RayProvider, RayWorker
from swarmkeeper.backends.autoscale_timings import AutoscaleTimings
from swarmkeeper.backends.demand import Demand
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.config import ServerConfig
from tests.autoscale_support import FAST, swarmui_backends_fds, wait_for, workers_of
from tests.comfy_peer import invert_graph
from tests.metrics_support import scrape, value
from tests.ports import free_port
from tests.ray_cluster import WORKER_ENV, RayHead, ray_head
from tests.servers import ROOT, APIClient, ServerProcess, in_process, on_loopback, test_config

#: The nodes' Ray workers cannot import swarmkeeper (ray_cluster.BLOCKER): the actor needs none.
#: Seconds a test waits for Ray (an actor's worker process starts in 1-2 s; more on a loaded machine).
RAY_WAIT = 60.0
FAKE_WORKER = f"{WORKER_ENV} {sys.executable} -m swarmkeeper_doubles.fake_comfyui --port {{port}}"


@pytest.fixture(scope="module")
def head() -> Iterator[RayHead]:
    with ray_head(gpus=2, cpus=2) as started:
        yield started


def ray_settings(address: str, **settings: Any) -> dict[str, Any]:
    return {"Provider": "ray", "RayAddress": address, "GPUsPerWorker": 1, "CPUsPerWorker": 0,
            "WorkerCommand": FAKE_WORKER, "ConnectionAttemptTimeoutSeconds": 5, **settings}


def master(tmp_path: Path, head: RayHead, timings: AutoscaleTimings = FAST, **settings: Any) -> ServerConfig:
    data = tmp_path / "master"
    data.mkdir()
    (data / "Backends.fds").write_text(swarmui_backends_fds(Path("unused"), **ray_settings(head.address, **settings)))
    return test_config(data, autoscale=timings, comfy_port=None)


def scaler_of(api: APIClient) -> AutoScaler:
    assert api.services is not None
    scaler = api.services.registry.get(0).backend  # type: ignore[union-attr]
    assert isinstance(scaler, AutoScaler)
    return scaler


def running(listing: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in workers_of(listing) if w["type"] == "comfyui_api" and w["status"] == "running"]


class Seen:
    """Every worker handle the scaler held while the test watched (their processes are checked at the end)."""

    def __init__(self, scaler: AutoScaler) -> None:
        self.scaler = scaler
        self.handles: dict[str, RayWorker] = {}

    def __call__(self, check: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
        def watching(listing: dict[str, Any]) -> bool:
            for worker in self.scaler.workers.values():
                assert isinstance(worker.handle, RayWorker)
                self.handles[worker.handle.name] = worker.handle
            return check(listing)
        return watching

    def pids(self) -> list[int]:
        return [pid for handle in self.handles.values() for pid in (handle.pid, handle.actor_pid) if pid]


async def gone(pids: list[int], timeout: float = 15.0) -> None:
    """Each process has ended (not left behind as an orphan)."""
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if alive_pid(pid)]) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive, [psutil.Process(pid).cmdline() for pid in alive if alive_pid(pid)]


def alive_pid(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_a_burst_scales_from_zero_to_the_gpus_the_next_waits_and_idle_workers_end(
        tmp_path: Path, head: RayHead) -> None:
    config = master(tmp_path, head, MaxBackends=3, MinBackends=0, MinQueuedBeforeExpand=1, MinWaitBetweenStart=0,
                    MinIdleTime=0.05, MinWaitBetweenStop=0)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await api.wait_status(0, "running", timeout=30)
        scaler = scaler_of(api)
        seen = Seen(scaler)
        assert not scaler.workers
        server.services.manager.services.demand.source = lambda: Demand(waiting=10, unmet=0)
        record = server.services.registry.get(0)
        assert record is not None
        await wait_for(api, seen(lambda listing: len(running(listing)) == 2 and scaler.launching == 1
                                 and "2 of 3 workers running, 1 starting" in record.status_reason),
                       timeout=RAY_WAIT, what="two workers on the two GPUs and a third launch waiting for one")
        titles = {w["title"] for w in running(await api.ok("ListBackends", nonreal=True))}
        assert len(titles) == 2 and titles <= {f"[Remote from 0: Farm] ComfyUI worker #{n}" for n in (1, 2, 3)}
        server.services.manager.services.demand.source = Demand  # the burst is over: every worker idles out
        await wait_for(api, seen(lambda listing: not workers_of(listing) and not scaler.launching
                                 and not scaler.workers and len(seen.handles) == 3),
                       timeout=2 * RAY_WAIT, what="the waiting worker placed, then every worker stopped when idle")
        assert scaler.launches == 3  # nothing launched twice
        await gone(seen.pids())
        samples = await scrape(api)
        assert value(samples, "swarmkeeper_autoscale_stops_total", cause="idle") == 3
        assert value(samples, "swarmkeeper_autoscale_launches_total", outcome="ready") == 3


async def test_a_worker_killed_with_sigkill_is_replaced_and_leaves_no_process(tmp_path: Path, head: RayHead) -> None:
    """Without waiting for a ping (none comes during the test): the driver sees the actor, or the
    program it runs, end; the server sees its driver end."""
    no_pings = dataclasses.replace(FAST, ping=3600)
    config = master(tmp_path, head, no_pings, MinBackends=1, MaxBackends=2, MinWaitAfterFailure=0)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        scaler = scaler_of(api)
        seen = Seen(scaler)
        await wait_for(api, seen(lambda listing: len(running(listing)) == 1), timeout=RAY_WAIT,
                       what="worker #1 running")
        first = seen.handles[next(iter(seen.handles))]
        assert first.pid and first.actor_pid
        psutil.Process(first.actor_pid).send_signal(signal.SIGKILL)
        await gone([first.actor_pid, first.pid])  # the actor took its ComfyUI with it
        await wait_for(api, seen(lambda listing: any(w["title"].endswith("#2") for w in running(listing))),
                       timeout=RAY_WAIT, what="worker #2 replacing #1")
        second = seen.handles[f"{first.name[:-1]}2"]
        assert second.pid and second.actor_pid
        psutil.Process(second.pid).send_signal(signal.SIGKILL)  # the worker program alone dies
        await wait_for(api, seen(lambda listing: any(w["title"].endswith("#3") for w in running(listing))),
                       timeout=RAY_WAIT, what="worker #3 replacing #2")
        await gone([second.actor_pid])  # its actor was killed
        third = seen.handles[f"{first.name[:-1]}3"]
        assert isinstance(scaler.provider, RayProvider) and scaler.provider.driver is not None
        driver = scaler.provider.driver.process.pid
        psutil.Process(driver).send_signal(signal.SIGKILL)  # the driver dies: its actors with it
        await wait_for(api, seen(lambda listing: any(w["title"].endswith("#4") for w in running(listing))),
                       timeout=RAY_WAIT, what="worker #4 on a new driver replacing #3")
        await gone([driver, third.actor_pid or 0, third.pid or 0])
        assert scaler.launches == 4
        samples = await scrape(api)
        assert value(samples, "swarmkeeper_autoscale_stops_total", cause="ping") == 3
    await gone(seen.pids())


@pytest.mark.comfyui
async def test_a_real_comfyui_on_the_cpu_as_a_ray_worker_runs_a_prompt_from_the_pool(
        tmp_path: Path, head: RayHead) -> None:
    command = (f"{WORKER_ENV} COMFY_PEER_DIR={tmp_path / 'comfy'} {ROOT / '.peers' / 'comfyui.sh'} "
               "--listen {host} --port {port}")
    config = master(tmp_path, head, MinBackends=1, MaxBackends=1, WorkerCommand=command, WorkerStartSeconds=180)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        seen = Seen(scaler_of(api))
        await wait_for(api, seen(lambda listing: len(running(listing)) == 1), timeout=180,
                       what="a real ComfyUI running as a Ray worker")
        async with ComfyClient(server.url + "/ComfyBackendDirect", timeout=60) as comfy:
            queued = await comfy.queue_prompt(invert_graph(5), client_id="ray-real")
            deadline = time.monotonic() + 120
            while not (done := (await comfy.history(queued["prompt_id"])).get(queued["prompt_id"])):
                assert time.monotonic() < deadline, "the prompt never finished on the Ray worker"
                await asyncio.sleep(0.1)
            assert done["outputs"]["3"]["images"][0]["filename"].startswith("probe")
    await gone(seen.pids())


def fake_worker_at(url: str) -> list[psutil.Process]:
    port = url.rstrip("/").rsplit(":", 1)[1]
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "swarmkeeper_doubles.fake_comfyui" in cmdline and cmdline[-1] == port:
            found.append(process)
    return found


async def test_detached_workers_are_adopted_by_a_restarted_swarmkeeper(tmp_path: Path, head: RayHead) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "Backends.fds").write_text(swarmui_backends_fds(
        Path("unused"), **ray_settings(head.address, MinBackends=1, MaxBackends=2, KeepWorkersOnExit=True)))
    first = ServerProcess(data).start()
    try:
        async with first.client() as http:
            listing = await wait_for(APIClient(http, None), lambda listing: len(running(listing)) == 1,
                                     timeout=RAY_WAIT, what="worker #1 running")
        (worker,) = running(listing)
        url = worker["api_url"]
        (process,) = fake_worker_at(url)
    finally:
        assert first.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its graceful stop
    async with httpx.AsyncClient(timeout=10) as direct:  # the worker outlived swarmkeeper, still loaded
        assert (await direct.get(url.rstrip("/") + "/system_stats")).status_code == 200
    second = ServerProcess(data).start()
    try:
        async with second.client() as http:
            api = APIClient(http, None)
            listing = await wait_for(api, lambda listing: len(running(listing)) == 1, timeout=RAY_WAIT,
                                     what="worker #1 adopted")
            (adopted,) = running(listing)
            assert (adopted["api_url"], adopted["title"]) == (url, worker["title"])
            assert fake_worker_at(url) == [process]  # the same process: adopted, not started again
    finally:
        assert second.stop() in (0, -signal.SIGTERM)
    assert "Adopting Ray worker" in second.output()
    text = (data / "Backends.fds").read_text()
    assert "KeepWorkersOnExit: true" in text
    (data / "Backends.fds").write_text(text.replace("KeepWorkersOnExit: true", "KeepWorkersOnExit: false"))
    third = ServerProcess(data).start()  # no longer kept: the worker left running is stopped
    try:
        await gone([process.pid])
    finally:
        assert third.stop() in (0, -signal.SIGTERM)
    assert "stopping it (KeepWorkersOnExit is off)" in third.output()


async def test_a_ray_address_that_does_not_answer_is_the_reason_and_leaves_nothing(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    async with in_process(test_config(tmp_path / "data", autoscale=FAST)) as api:
        backend_id = int((await api.ok("AddNewBackend", type_id="autoscalingbackend"))["id"])
        await api.ok("EditBackend", backend_id=backend_id, title="Farm",
                     settings=ray_settings(address, ConnectionAttemptTimeoutSeconds=1))
        entry = await api.wait_status(backend_id, "errored", timeout=60)
        assert entry["status_reason"] == (f"The Ray cluster at {address} did not answer within 1 s (RayAddress). "
                                          "(gave up after 4 attempts)")
        assert drivers_for(address) == []
        slow = int((await api.ok("AddNewBackend", type_id="autoscalingbackend"))["id"])
        await api.ok("EditBackend", backend_id=slow, title="Slow",
                     settings=ray_settings(address, ConnectionAttemptTimeoutSeconds=60))
        deadline = time.monotonic() + 30
        while not (joining := drivers_for(address)):
            assert time.monotonic() < deadline, "no driver ever started"
            await asyncio.sleep(0.05)
        await api.ok("DeleteBackend", backend_id=slow)  # stopped while its driver tries to join
        await gone([process.pid for process in joining])
        bad = int((await api.ok("AddNewBackend", type_id="autoscalingbackend"))["id"])
        await api.ok("EditBackend", backend_id=bad, title="Bad", settings=ray_settings(address, RayResources="A100"))
        entry = await api.wait_status(bad, "errored")
        assert entry["status_reason"] == "RayResources: 'A100' is not name=amount."
        await api.ok("EditBackend", backend_id=bad, title="Bad", settings=ray_settings(address, GPUsPerWorker=-1))
        entry = await api.wait_status(bad, "errored")
        assert entry["status_reason"] == "GPUsPerWorker must be 0 or more (it is -1)."


#: On the driver's PYTHONPATH: Ray in that process says it is another version (Ray's own check then runs).
OTHER_VERSION = """import os
if os.environ.get("FAKE_RAY_VERSION"):
    import ray._private.utils as utils
    real = utils.compute_version_info
    utils.compute_version_info = lambda: (os.environ["FAKE_RAY_VERSION"], real()[1])
"""


async def test_a_version_mismatch_with_the_cluster_is_the_reason(tmp_path: Path, head: RayHead,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(OTHER_VERSION)
    monkeypatch.setenv("PYTHONPATH", str(site))  # for the driver process the provider starts
    monkeypatch.setenv("FAKE_RAY_VERSION", "2.59.0")
    async with in_process(test_config(tmp_path / "data", autoscale=FAST)) as api:
        backend_id = int((await api.ok("AddNewBackend", type_id="autoscalingbackend"))["id"])
        await api.ok("EditBackend", backend_id=backend_id, title="Farm", settings=ray_settings(head.address))
        entry = await api.wait_status(backend_id, "errored", timeout=60)
        reason = entry["status_reason"]
        assert reason.startswith(f"The Ray cluster at {head.address} runs another Ray or Python version than "
                                 "swarmkeeper (Ray 2.60.0, Python "), reason
        assert "Version mismatch: The cluster was started with: Ray: 2.60.0" in reason
        assert "was started with: Ray: 2.59.0" in reason
        assert drivers_for(head.address) == []


async def test_a_server_killed_with_sigkill_leaves_no_driver(tmp_path: Path) -> None:
    """Even while the driver waits for a cluster that does not answer (inside Ray's connect)."""
    address = f"127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    data.mkdir()
    (data / "Backends.fds").write_text(swarmui_backends_fds(
        Path("unused"), **ray_settings(address, ConnectionAttemptTimeoutSeconds=60)))
    server = ServerProcess(data).start()
    try:
        deadline = time.monotonic() + 30
        while not (joining := drivers_for(address)):
            assert time.monotonic() < deadline, "no driver ever started"
            await asyncio.sleep(0.05)
    finally:
        server.kill()
    await gone([process.pid for process in joining])


def drivers_for(address: str) -> list[psutil.Process]:
    """The Ray driver processes trying to join the cluster at ``address``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "autoscale_ray_driver" in cmdline and address in cmdline and alive_pid(process.pid):
            found.append(process)
    return found


def test_without_ray_installed_the_reason_says_how_to_install_it() -> None:
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "from swarmkeeper.backends.autoscale import AutoScalingSettings, provider_for\n"
            "import logging\n"
            "print(provider_for(AutoScalingSettings(Provider='ray'), logging.getLogger(), 1.0).problem())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == ("The Ray provider needs `pip install swarmkeeper[ray]` (Ray is not installed "
                                     "in this Python)."), result.stderr
