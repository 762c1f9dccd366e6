"""The ``autoscalingbackend`` type: SwarmUI's Auto Scaling Backend (scale-out.md §1), made real.

It never generates (``max_usages`` 0). Once running, it looks every ``tick`` seconds: it reads the
waiting work (``services.demand``) and its workers, asks the policy (autoscale_policy.py) what to
do, and does it: launch a worker through its provider (autoscale_script.py), or stop an idle one.
Its status reason always says what it is doing and why. Every ``ping`` seconds each worker is
pinged; one that does not answer is stopped and removed. While it may still add a worker,
requests that no backend can take wait for it (``grows``) instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swarmkeeper.backends.autoscale_policy import Action, Decision, Limits, Observation, decide
from swarmkeeper.backends.autoscale_provider import Launched, LaunchFailed, Provider, WorkerHandle
from swarmkeeper.backends.autoscale_ray import RayProvider
from swarmkeeper.backends.autoscale_ray_options import RayOptions
from swarmkeeper.backends.autoscale_script import ScriptProvider
from swarmkeeper.backends.autoscale_workers import (
    NotAWorker,
    Worker,
    child_settings,
    close_client,
    identify,
    monotonic,
    ping,
    shut_down,
    sleep_until,
    title_of,
)
from swarmkeeper.backends.base import Backend, BackendHost, BackendServices, BackendType
from swarmkeeper.backends.settings import boolean, decimal, dropdown, integer, text
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.swarm_settings import (
    Connection,
    SwarmSettings,
    authorization_header,
    connection_attempt_timeout,
    other_headers,
)
from swarmkeeper.clients.errors import ComfyError
from swarmkeeper.clients.swarm import SwarmError
from swarmkeeper.exceptions import BackendConfigError
from swarmkeeper.metrics import LaunchOutcome, Metrics, StopCause

TYPE_ID = "autoscalingbackend"
#: A worker's child in these statuses is not pinged yet (SwarmUI's rule).
STARTING = (BackendStatus.WAITING, BackendStatus.LOADING)
MINUTE = 60.0


@dataclass(frozen=True)
class AutoScalingSettings:
    MaxBackends: int = integer(5, "Maximum number of additional backends to spin up.")
    MinBackends: int = integer(0, "Minimum number of backends to always keep running, even if idle.")
    MinWaitBetweenStart: float = decimal(
        1, "Minimum time, in minutes, between spinning up new backends.\nFor example, if set 1, then only 1 new "
           "backend per minute can be started.\nThis helps reduce the resource impact of sudden large bursts of "
           "activity.")
    MinWaitAfterFailure: float = decimal(
        2, "Minimum time, in minutes, to wait after a backend fails to start before trying to start another one.")
    MinWaitBetweenStop: float = decimal(
        1, "Minimum time, in minutes, between shutting down idle backends.\nFor example, if set 1, then only 1 "
           "backend per minute can be automatically stopped.\nThis helps prevent spiky start/stop thrash, but may "
           "waste resources a bit if there are rare large bursts of activity.")
    MinIdleTime: float = decimal(
        10, "Minimum time, in minutes, that a backend must be idle before it can be selected for shutdown.")
    MinQueuedBeforeExpand: int = integer(
        10, "Minimum number of waiting generations before a new backend can be started.\nSelect this high enough to "
            "not be wasteful of resources, but low enough to not cause generation requests to be pending for too "
            "long.\nMust be set to at least 1, should ideally be set higher.")
    StartScript: str = text(
        "", "File path to an executable script (normally a '.sh') that will cause a new backend to be started.\nIt "
            "prints '[SwarmAutoScaleBackend]NewURL: <url>[/SwarmAutoScaleBackend]' (and may print 'DoRetries: <n>' "
            "or 'DeclareFailed: <reason>' the same way).\nSee swarmkeeper's README, 'The autoscaling backend'.")
    AuthorizationHeader: str = authorization_header()
    OtherHeaders: str = other_headers()
    ConnectionAttemptTimeoutSeconds: int = connection_attempt_timeout()
    Provider: str = dropdown("script", "(swarmkeeper) What launches workers: 'script' runs StartScript "
                                       "(SwarmUI's protocol); 'ray' starts each as a Ray actor (the settings "
                                       "marked Provider 'ray').", [("script", "Start script"), ("ray", "Ray")])
    StartScriptTimeoutSeconds: int = integer(
        600, "(swarmkeeper) Longest time, in seconds, a start script may run without printing NewURL; it is then "
             "stopped and counts as a failed launch.")
    RayAddress: str = text(
        "", "(swarmkeeper, Provider 'ray') The Ray cluster to start workers on: its head, '<head>:6379' (this "
            "machine must be a node of the cluster: 'ray start --address=<head>:6379 --num-cpus=0 --num-gpus=0'); "
            "empty: the cluster this machine is a node of.")
    GPUsPerWorker: float = decimal(1, "(swarmkeeper, Provider 'ray') GPUs each worker's Ray actor asks for.")
    CPUsPerWorker: float = decimal(1, "(swarmkeeper, Provider 'ray') CPUs each worker's Ray actor asks for.")
    RayResources: str = text(
        "", "(swarmkeeper, Provider 'ray') Custom Ray resources each worker asks for: a JSON object "
            "('{\"A100\": 1}') or 'name=amount' pairs, comma separated.")
    WorkerCommand: str = text(
        RayOptions.command, "(swarmkeeper, Provider 'ray') The worker each Ray actor starts, on its node: "
                            "'{host}' is the node's address, '{port}' a free port there, '{python}' the Python "
                            "running the actor. It must answer as ComfyUI (or SwarmUI) at http://{host}:{port}/.")
    WorkerFolder: str = text(
        "", "(swarmkeeper, Provider 'ray') The folder the worker command runs in, on every node (for ComfyUI: "
            "its folder, where main.py is). Empty: the Ray worker's own.")
    WorkerStartSeconds: int = integer(
        120, "(swarmkeeper, Provider 'ray') Longest time, in seconds, a worker may take to answer once its actor "
             "started it (rounded up to 5 s steps, as DoRetries).")
    KeepWorkersOnExit: bool = boolean(
        False, "(swarmkeeper, Provider 'ray') Workers outlive swarmkeeper's exit (detached, named Ray actors); the "
               "next start adopts them, models still loaded. Deleting or disabling the backend still stops them.")


def limits_of(settings: AutoScalingSettings) -> Limits:
    return Limits(min_workers=settings.MinBackends, max_workers=settings.MaxBackends,
                  min_queued=settings.MinQueuedBeforeExpand, wait_between_start=settings.MinWaitBetweenStart * MINUTE,
                  wait_after_failure=settings.MinWaitAfterFailure * MINUTE,
                  wait_between_stop=settings.MinWaitBetweenStop * MINUTE, min_idle=settings.MinIdleTime * MINUTE)


def ray_options(settings: AutoScalingSettings) -> RayOptions:
    return RayOptions(address=settings.RayAddress.strip(), gpus=settings.GPUsPerWorker, cpus=settings.CPUsPerWorker,
                      resources_text=settings.RayResources, command=settings.WorkerCommand,
                      folder=settings.WorkerFolder, start_seconds=settings.WorkerStartSeconds,
                      keep=settings.KeepWorkersOnExit)


def worker_prefix(services: BackendServices, backend_id: int) -> str:
    """The start of this backend's Ray actor names: the same across restarts of this server (its
    machine and data folder), different for another server sharing the cluster."""
    where = f"{socket.gethostname()}:{Path(services.data_dir).resolve()}"
    return f"swarmkeeper-{hashlib.sha256(where.encode()).hexdigest()[:10]}-{backend_id}-"


def provider_for(settings: AutoScalingSettings, log: logging.Logger, grace: float, *, prefix: str = "",
                 exiting: Callable[[], bool] = lambda: False,
                 lost: Callable[[WorkerHandle, str], None] = lambda handle, why: None) -> Provider:
    if settings.Provider == "script":
        return ScriptProvider(settings.StartScript, timeout=max(settings.StartScriptTimeoutSeconds, 1), log=log,
                              grace=grace)
    if settings.Provider == "ray":
        return RayProvider(ray_options(settings), prefix=prefix, log=log,
                           connect_timeout=max(settings.ConnectionAttemptTimeoutSeconds, 1), exiting=exiting,
                           lost=lost)
    raise BackendConfigError(f"Unknown Provider '{settings.Provider}': use 'script' or 'ray'.")


class AutoScaler(Backend[AutoScalingSettings]):
    def __init__(self, host: BackendHost[AutoScalingSettings], clock: Callable[[], float] = monotonic) -> None:
        super().__init__(host)
        self.max_usages = 0
        self.can_load_models = False
        self.clock = clock
        self.timings = host.services.autoscale
        self.provider: Provider | None = None
        self.connection: Connection | None = None
        self.limits = Limits()
        self.workers: dict[int, Worker] = {}
        self.launching = 0
        self.launches = 0
        self.next_start = self.retry_after = self.next_stop = self.last_ping = 0.0
        self.last_failure = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    # --- Backend ---

    async def init(self) -> None:
        await self.shutdown()
        settings = self.settings
        if settings.MaxBackends <= 0:
            self.host.set_status(BackendStatus.DISABLED, "MaxBackends is 0: no worker may be started.")
            return
        if settings.Provider == "script" and not settings.StartScript.strip():
            self.host.set_status(BackendStatus.DISABLED, "No StartScript is set.")
            return
        self.limits = limits_of(settings)
        problem = self.limits.problem()
        if problem is not None:
            raise BackendConfigError(f"Nonsensical settings, refusing to start: {problem}.")
        services = self.host.services
        provider = provider_for(settings, self.host.log, self.timings.grace,
                                prefix=worker_prefix(services, self.host.id), exiting=lambda: services.exiting,
                                lost=self._lost)
        problem = provider.problem()
        if problem is not None:
            raise BackendConfigError(problem)
        self.connection = Connection.from_settings(self._swarm_settings(""), self.host.log)
        self.provider = provider
        adopted = await provider.start()
        self.next_start = self.retry_after = self.next_stop = 0.0
        self.last_ping = self.clock()
        self.host.set_status(BackendStatus.RUNNING, "Starting...")
        for number, launched in adopted:
            self._adopt(number, launched)
        self._loop = asyncio.create_task(self._run(), name=f"autoscale-{self.host.id}")

    async def shutdown(self) -> None:
        self.grows = False
        loop, self._loop = self._loop, None
        tasks, self._tasks = set(self._tasks), set()
        for task in [*tasks, *([loop] if loop else [])]:
            task.cancel()
        for task in [*tasks, *([loop] if loop else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        workers, self.workers = list(self.workers.values()), {}
        if self.provider is not None and self.provider.keeps_workers():
            await asyncio.gather(*(self._leave(worker) for worker in workers))
            workers = []
        for _ in workers:
            self._metrics.worker_stopped(StopCause.SHUTDOWN)
        await asyncio.gather(*(self._end(worker, "the autoscaling backend is shutting down") for worker in workers))
        provider, self.provider = self.provider, None
        if provider is not None:
            await provider.close()
        self.launching = 0

    # --- the loop ---

    async def _run(self) -> None:
        while True:
            try:
                self.step()
            except Exception:  # a bug in one look must not end the looking
                self.host.log.exception("Autoscaling backend: a scaling step failed")
            await asyncio.sleep(self.timings.tick)

    def observe(self) -> Observation:
        demand = self.host.services.demand.read()
        return Observation(now=self.clock(), waiting=demand.waiting, unmet=demand.unmet,
                           workers=tuple(worker.view() for worker in self.workers.values()),
                           launching=self.launching, next_start=self.next_start, retry_after=self.retry_after,
                           next_stop=self.next_stop)

    def step(self) -> Decision:
        """One look: decide, act, say why; ping the workers when due."""
        seen = self.observe()
        decision = decide(seen, self.limits)
        if decision.action is Action.START:
            for _ in range(decision.count):
                self._start_launch(seen.now)
        elif decision.action is Action.STOP and decision.worker is not None:
            self.next_stop = seen.now + self.limits.wait_between_stop
            self._stop_by_id(decision.worker, "idle")
        started = decision.count if decision.action is Action.START else 0
        grows = seen.active + started < self.limits.max_workers or self.launching > 0 \
            or any(not worker.running for worker in self.workers.values())
        if grows is not self.grows:  # grows is Tracked: an assignment is a change the views follow
            self.grows = grows
        failure = f". Last failed launch: {self.last_failure}" if self.last_failure else ""
        self.host.set_status(BackendStatus.RUNNING, decision.reason + failure)
        if seen.now - self.last_ping >= self.timings.ping:
            self.last_ping = seen.now
            for worker in list(self.workers.values()):  # SwarmUI's rule: all but those still loading
                if worker.record is not None and worker.record.status not in STARTING and not worker.pinging:
                    self._spawn(self._ping(worker))
        return decision

    def _spawn(self, work: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_launch(self, now: float) -> None:
        self.launching += 1
        self.launches += 1
        self.next_start = max(self.next_start, now + self.limits.wait_between_start)
        self._spawn(self._launch(self.launches))

    # --- one worker's life ---

    async def _launch(self, number: int) -> None:
        try:
            await self._launch_one(number)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug must still end the launch, with a reason
            self.host.log.exception("Autoscale launch #%s failed unexpectedly", number)
            self._failed(number, f"unexpected error: {error}")
            worker = self.workers.pop(number, None)
            if worker is not None:
                await self._end(worker, "its launch failed")

    async def _launch_one(self, number: int) -> None:
        assert self.provider is not None
        self.host.log.info("Autoscaling backend launching worker #%s", number)
        began = monotonic()
        try:
            outcome = await self.provider.launch(number)
        finally:
            self.launching -= 1
        if isinstance(outcome, LaunchFailed):
            self._metrics.worker_launched(LaunchOutcome.DECLARED_FAILED if outcome.declared else LaunchOutcome.FAILED)
            self._failed(number, outcome.reason)
            return
        assert isinstance(outcome, Launched)
        worker = Worker.of(number, outcome, self.clock())
        self.workers[number] = worker
        self.next_start = max(self.next_start, self.clock() + self.limits.wait_between_start)
        if await self._connect(worker):
            self._metrics.worker_launched(LaunchOutcome.READY, monotonic() - began)
        else:
            self._metrics.worker_launched(LaunchOutcome.UNREACHABLE)

    def _adopt(self, number: int, launched: Launched) -> None:
        """A worker an earlier start of this server left running: reached and stood up as any new one."""
        self.launches = max(self.launches, number)
        worker = Worker.of(number, launched, self.clock())
        self.workers[number] = worker
        self._spawn(self._connect(worker))

    @property
    def _metrics(self) -> Metrics:
        return self.host.services.metrics

    def _failed(self, number: int, reason: str) -> None:
        self.host.log.warning("Autoscale launch #%s failed: %s", number, reason)
        self.last_failure = f"#{number}: {reason}"
        self.retry_after = max(self.retry_after, self.clock() + self.limits.wait_after_failure)
        self.step()

    async def _connect(self, worker: Worker) -> bool:
        """Reach the worker's URL until it answers (or its time is up), then stand it up as a child;
        False if it never answered."""
        assert self.connection is not None
        deadline = worker.deadline(self.timings.per_retry, self.connection)
        last = ""
        while True:
            try:
                worker.kind = await identify(worker.url, self.connection)
                break
            except NotAWorker as error:
                last = str(error)
            except (SwarmError, ComfyError) as error:
                last = str(error) or type(error).__name__
            if monotonic() >= deadline:
                self.workers.pop(worker.number, None)
                self._failed(worker.number, f"the worker at {worker.url} did not answer in time: {last}")
                await self._end(worker, "it never answered")  # the wait after a failure runs meanwhile
                return False
            await sleep_until(deadline, self.timings.probe)
        type_id, settings = child_settings(worker.kind, worker.url, self.settings.AuthorizationHeader,
                                           self.settings.OtherHeaders, self.settings.ConnectionAttemptTimeoutSeconds)
        title = title_of(self.host.id, self.host.title, worker.kind, worker.number)
        worker.record = self.host.spawn_child(type_id, settings, title, control=True)
        self.last_failure = ""
        self.host.log.info("Autoscale worker #%s at %s is backend %s (%s)", worker.number, worker.url,
                           worker.record.id, worker.kind)
        return True

    async def _ping(self, worker: Worker) -> None:
        assert self.connection is not None
        worker.pinging = True
        try:
            trouble = await ping(worker, self.connection)
        finally:
            worker.pinging = False
        if trouble is not None:
            await self._remove(worker, f"it failed its ping ({trouble})")

    def _lost(self, handle: WorkerHandle, why: str) -> None:
        """The provider saw a worker end unasked (a Ray actor died): remove it now, as a failed ping would."""
        for worker in list(self.workers.values()):
            if worker.handle is handle:
                self._spawn(self._remove(worker, why))

    async def _remove(self, worker: Worker, why: str) -> None:
        """Remove a worker that is lost (the policy replaces it as needed)."""
        if self.workers.get(worker.number) is not worker:
            return
        self.host.log.warning("Autoscale worker #%s at %s is lost: %s; removing it", worker.number, worker.url, why)
        self.workers.pop(worker.number, None)
        self._metrics.worker_stopped(StopCause.PING)
        await self._end(worker, why)
        self.step()

    def _stop_by_id(self, backend_id: int, why: str) -> None:
        for number, worker in list(self.workers.items()):
            if worker.view().id == backend_id:
                del self.workers[number]
                self._metrics.worker_stopped(StopCause.IDLE)
                self._spawn(self._end(worker, why))

    async def _end(self, worker: Worker, why: str) -> None:
        """Stop a worker (ShutdownServer for a Swarm one), remove its child, end its launch."""
        self.host.log.info("Autoscale stopping worker #%s at %s: %s", worker.number, worker.url, why)
        if self.connection is not None:
            trouble = await shut_down(worker, self.connection)
            if trouble is not None:
                self.host.log.info("Autoscale worker #%s: ShutdownServer failed: %s", worker.number, trouble)
        await close_client(worker)
        record, worker.record = worker.record, None
        if record is not None:
            await self.host.remove_child(record)
        await worker.handle.release()

    async def _leave(self, worker: Worker) -> None:
        """Leave a worker running for the next start of this server to adopt (KeepWorkersOnExit)."""
        self.host.log.info("Autoscale worker #%s at %s is left running for the next start", worker.number, worker.url)
        await close_client(worker)
        record, worker.record = worker.record, None
        if record is not None:
            await self.host.remove_child(record)

    def _swarm_settings(self, url: str) -> SwarmSettings:
        settings = self.settings
        return SwarmSettings(Address=url or "http://127.0.0.1/", AuthorizationHeader=settings.AuthorizationHeader,
                             OtherHeaders=settings.OtherHeaders,
                             ConnectionAttemptTimeoutSeconds=settings.ConnectionAttemptTimeoutSeconds)


AUTOSCALING_TYPE: BackendType[AutoScalingSettings] = BackendType(
    id=TYPE_ID, name="Auto Scaling Backend",
    description="(Advanced users only) Automatically launch other instances of SwarmUI to serve as dynamic "
                "additional backends.",
    settings_class=AutoScalingSettings, factory=AutoScaler, fast_load=True, standard=False)
