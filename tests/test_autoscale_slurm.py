"""The script provider on a real Slurm (tests/slurm_cluster.py: Debian's Slurm on loopback, one node
with two fake GPUs), with the start script users copy (examples/slurm/): workers run as Slurm jobs
under a burst, a third waits in the queue for a GPU and starts when one is freed, an idle worker's
job ends, and Slurm refusing a job is a declared failure with Slurm's reason. After each test no job
is queued and nothing the launches started runs on."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from swarmkeeper import fds
from swarmkeeper.backends.autoscale import AUTOSCALING_TYPE, AutoScaler, AutoScalingSettings
from swarmkeeper.backends.autoscale_provider import LaunchFailed
from swarmkeeper.backends.autoscale_script import ScriptProvider, ScriptRun
from swarmkeeper.backends.autoscale_timings import AutoscaleTimings
from swarmkeeper.backends.demand import Demand
from swarmkeeper.config import ServerConfig
from swarmkeeper.dispatch.requests import Request
from tests.autoscale_support import FAST, left_running, none_left, swarmui_backends_fds, wait_for, workers_of
from tests.servers import ROOT, APIClient, on_loopback, test_config
from tests.slurm_cluster import Job, SlurmCluster, running_cluster, sbin

EXAMPLE = ROOT / "examples" / "slurm"
LOG = logging.getLogger("test.autoscale.slurm")
PREFIX = "[Remote from 0: Farm] "


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    with running_cluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


@dataclass(frozen=True)
class Farm:
    """The example scripts, copied as a user would, and the environment they read."""

    folder: Path
    script: Path
    monkeypatch: pytest.MonkeyPatch

    def set(self, **values: str) -> None:
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)


@pytest.fixture
async def farm(tmp_path: Path, cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Farm]:
    folder = tmp_path / "farm"
    shutil.copytree(EXAMPLE, folder)
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    farm = Farm(folder, folder / "start-worker.sh", monkeypatch)
    farm.set(WORKER_KIND="comfyui", WORKER_ADDRESS="127.0.0.1", WORKER_RETRIES="20",
             WORKER_COMFYUI=f"{sys.executable} -m swarmkeeper_doubles.fake_comfyui --host 127.0.0.1")
    yield farm
    await cluster.until_queue(lambda jobs: not jobs, "ended every job of the test", timeout=20)
    await none_left(folder)


def master(tmp_path: Path, script: Path, timings: AutoscaleTimings = FAST, **settings: object) -> ServerConfig:
    data = tmp_path / "master"
    data.mkdir()
    (data / "Backends.fds").write_text(swarmui_backends_fds(script, **settings))
    return test_config(data, autoscale=timings, comfy_port=None)


def states(jobs: list[Job]) -> list[str]:
    return sorted(job.state for job in jobs)


def gpus_seen(farm: Farm) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each running worker (a fake ComfyUI in a job, started in the farm's
    folder): the GPU Slurm gave its job."""
    return sorted(process.environ().get("CUDA_VISIBLE_DEVICES", "") for process in left_running(farm.folder)
                  if "swarmkeeper_doubles.fake_comfyui" in process.info["cmdline"])


def scaler_of(server_services: object) -> AutoScaler:
    backend = server_services.registry.get(0).backend  # type: ignore[attr-defined]
    assert isinstance(backend, AutoScaler)
    return backend


def launch_pid(job: Job) -> int:
    """The start script's pid: the example names its job swarmkeeper-worker-<host>-<pid>."""
    return int(job.name.rsplit("-", 1)[1])


async def test_a_burst_runs_workers_as_slurm_jobs_and_a_third_waits_for_a_free_gpu(
        farm: Farm, cluster: SlurmCluster, tmp_path: Path) -> None:
    config = master(tmp_path, farm.script, MaxBackends=3, MinQueuedBeforeExpand=1, MinWaitBetweenStart=0,
                    MinIdleTime=0.05, MinWaitBetweenStop=1, ConnectionAttemptTimeoutSeconds=5)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await api.wait_status(0, "running")
        scheduler = server.services.dispatch.pool.scheduler
        served: list[str] = []

        async def one() -> None:
            grant = await asyncio.wait_for(scheduler.acquire(Request(check=lambda record: None)), 60)
            served.append(grant.record.title)
            await asyncio.sleep(0.3)
            scheduler.release(grant.record)

        burst = asyncio.gather(*(one() for _ in range(6)))
        jobs = await cluster.until_queue(lambda jobs: states(jobs) == ["PENDING", "RUNNING", "RUNNING"],
                                         "two workers running and a third queued for a GPU")
        (waiting,) = [job for job in jobs if job.state == "PENDING"]
        running = [job for job in jobs if job.state == "RUNNING"]
        assert waiting.reason == "Resources"
        assert all(job.name.startswith("swarmkeeper-worker-") for job in jobs)
        await wait_for(api, lambda listing: sum(w["status"] == "running" for w in workers_of(listing)) == 2,
                       what="two workers running")
        assert gpus_seen(farm) == ["0", "1"]  # a GPU each
        await asyncio.wait_for(burst, 60)
        assert len(served) == 6 and set(served) <= {f"{PREFIX}ComfyUI worker #{n}" for n in (1, 2, 3)}
        scaler = scaler_of(server.services)
        assert (scaler.launches, scaler.launching, len(scaler.workers)) == (3, 1, 2)

        # Idle past MinIdleTime: one worker is stopped (one per MinWaitBetweenStop), its job ends, and
        # the queued job gets the freed GPU and becomes a worker.
        jobs = await cluster.until_queue(
            lambda jobs: len(jobs) == 2 and waiting.id in {job.id for job in jobs if job.state == "RUNNING"},
            "the queued job running on the freed GPU")
        assert len({job.id for job in running} - {job.id for job in jobs}) == 1
        await wait_for(api, lambda listing: sum(w["status"] == "running" for w in workers_of(listing)) == 2
                       and scaler.launching == 0, what="the queued job's worker running")
        (third,) = [w for w in scaler.workers.values()
                    if isinstance(w.handle, ScriptRun) and w.handle.process.pid == launch_pid(waiting)]
        assert third.running and third.url.startswith("http://127.0.0.1:") and third.retries == 20  # DoRetries
        assert scaler.launches == 3  # nothing launched twice
    # The master stopped: it released its workers, and their jobs were cancelled (farm checks).


async def test_an_idle_swarmkeeper_worker_shuts_down_and_its_job_ends(
        farm: Farm, cluster: SlurmCluster, tmp_path: Path) -> None:
    farm.set(WORKER_KIND="swarmkeeper", WORKER_SWARMKEEPER=f"{sys.executable} -m swarmkeeper",
             WORKER_LISTEN="127.0.0.1", WORKER_CONTROL_MINUTES="1", WORKER_RETRIES="30")
    # A long grace: the launch is not signalled while the worker ends itself, however slow the machine.
    config = master(tmp_path, farm.script, dataclasses.replace(FAST, grace=30.0), MaxBackends=1,
                    MinQueuedBeforeExpand=1, MinIdleTime=0.05, MinWaitBetweenStop=0, ConnectionAttemptTimeoutSeconds=5)
    async with on_loopback(config) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http, server.services)
        await api.wait_status(0, "running")
        board = server.services.manager.services.demand
        board.source = lambda: Demand(waiting=1, unmet=1)
        listing = await wait_for(api, lambda listing: bool(workers_of(listing)), what="a worker launched")
        (entry,) = workers_of(listing)
        record = server.services.registry.get(int(entry["id"]))
        assert record is not None
        # A generation holds it (as the pool would) while the test looks: on a slow machine the
        # worker could otherwise be up, idle past MinIdleTime and stopped between two polls.
        server.services.registry.claim(record)
        listing = await wait_for(api, lambda listing: any(w["status"] == "running" for w in workers_of(listing)),
                                 what="a running swarmkeeper worker")
        (worker,) = workers_of(listing)
        assert worker["title"] == f"{PREFIX}Master Control Swarm Instance"
        (job,) = await cluster.queue()
        assert job.state == "RUNNING"
        scaler = scaler_of(server.services)
        (launched,) = scaler.workers.values()
        run = launched.handle
        assert isinstance(run, ScriptRun) and run.process.pid == launch_pid(job)
        board.source = Demand
        server.services.registry.release(record)
        await wait_for(api, lambda listing: not workers_of(listing), what="the idle worker stopped")
        await cluster.until_queue(lambda jobs: not jobs, "the idle worker's job ended")
        await asyncio.wait_for(run.ended(), 10)
        # The worker ended itself (ShutdownServer): srun, and the start script, ended with it; the
        # job was not cancelled (a cancelled one ends the script with 143).
        assert run.process.returncode == 0


async def test_slurm_refusing_the_job_is_a_declared_failure_with_slurm_s_reason(
        farm: Farm, cluster: SlurmCluster, tmp_path: Path) -> None:
    farm.set(WORKER_GPUS="3")  # the node has two
    config = master(tmp_path, farm.script, MinBackends=1, MinWaitAfterFailure=1)
    async with on_loopback(config) as server:
        record = server.services.registry.get(0)
        assert record is not None
        for _ in range(300):
            if "Last failed launch" in record.status_reason:
                break
            await asyncio.sleep(0.05)
        assert record.status_reason.endswith(
            "Last failed launch: #1: The start script declared a failure: Slurm did not run the worker: "
            "Unable to allocate resources: Requested node configuration is not available")
        assert "Not refilling to MinBackends (1) yet: waiting after a failed launch" in record.status_reason
        assert scaler_of(server.services).launches == 1


@pytest.fixture
async def both_gpus_taken(cluster: SlurmCluster, farm: Farm) -> AsyncIterator[None]:
    """A job of someone else's holding the node's two GPUs."""
    blocker = await asyncio.create_subprocess_exec(
        sbin("srun"), "--gpus=2", "--job-name=someone-else", "sleep", "120", env={**os.environ, **cluster.env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    try:
        await cluster.until_queue(lambda jobs: [job.state for job in jobs] == ["RUNNING"], "the blocker running")
        yield
    finally:
        cluster.run("scancel", "--name=someone-else")
        await asyncio.wait_for(blocker.wait(), 15)


async def test_no_free_gpu_within_worker_wait_is_a_declared_failure(
        farm: Farm, cluster: SlurmCluster, both_gpus_taken: None) -> None:
    farm.set(WORKER_WAIT="1")
    outcome = await ScriptProvider(str(farm.script), timeout=30, log=LOG, grace=2).launch(1)
    assert isinstance(outcome, LaunchFailed) and outcome.declared
    assert outcome.reason.startswith("The start script declared a failure: Slurm did not run the worker: "
                                     "Unable to allocate resources: ")
    assert [job.name for job in await cluster.queue()] == ["someone-else"]


async def test_a_queued_launch_past_its_timeout_cancels_its_job(
        farm: Farm, cluster: SlurmCluster, both_gpus_taken: None) -> None:
    provider = ScriptProvider(str(farm.script), timeout=3, log=LOG, grace=2)
    launch = asyncio.create_task(provider.launch(1))
    jobs = await cluster.until_queue(lambda jobs: len(jobs) == 2, "the launch's job queued")
    assert {job.state for job in jobs} == {"RUNNING", "PENDING"}
    outcome = await asyncio.wait_for(launch, 15)
    assert outcome == LaunchFailed("The start script gave no NewURL within 3 s; it was stopped.")
    # The script was sent SIGTERM and cancelled its queued job: it never takes a GPU later.
    assert [job.name for job in await cluster.queue()] == ["someone-else"]


def test_the_readme_shows_the_example_as_it_is() -> None:
    """README's Slurm section quotes both scripts whole, and its Backends.fds entry loads as an
    autoscaling backend with settings that exist."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### On Slurm\n", 1)[1].split("\n## ", 1)[0]
    for name in ("start-worker.sh", "worker-job.sh"):
        assert f"```bash\n{(EXAMPLE / name).read_text()}```" in section, f"README's copy of {name} is out of date"
    entry = fds.loads(section.split("\n```\n", 1)[1].split("```", 1)[0])["0"]
    assert isinstance(entry, fds.Section) and entry["type"] == AUTOSCALING_TYPE.id
    settings = entry["settings"]
    known = {field.name for field in dataclasses.fields(AutoScalingSettings)}
    assert isinstance(settings, fds.Section) and set(settings) <= known
    assert settings["StartScript"] == "/shared/farm/start-worker.sh"


async def test_a_cluster_stopped_with_a_job_running_leaves_nothing(tmp_path: Path) -> None:
    """The fixture's own promise: stop() cancels what runs and ends every daemon (a cluster of the
    test's own, beside the module's)."""
    with running_cluster(tmp_path / "slurm") as own:
        job = await asyncio.create_subprocess_exec(
            sbin("srun"), "--gpus=1", "sleep", "120", env={**os.environ, **own.env},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        await own.until_queue(lambda jobs: [j.state for j in jobs] == ["RUNNING"], "the job running")
        for _ in range(200):  # its slurmstepd comes up a moment after the job is RUNNING
            names = sorted(process.info["name"] for process in own.left_running())
            if "slurmstepd" in names:
                break
            await asyncio.sleep(0.05)
        assert names == ["munged", "slurmctld", "slurmd", "slurmscriptd", "slurmstepd"]
    assert own.left_running() == []
    assert await asyncio.wait_for(job.wait(), 15) != 0  # srun ended with its cancelled job
