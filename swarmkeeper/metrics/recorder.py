"""The counters and histograms of one server, in a registry of its own.

Each server (each :class:`~swarmkeeper.services.Services`) has its own
:class:`prometheus_client.CollectorRegistry`, never the library's global one, so several servers
in one process (tests) never share or clash.

Recording is a method call named for the fact (``metrics.restarted(type_id, RestartCause.CRASH)``),
so callers never touch prometheus-client. Labels are bounded: backend type ids (from the type
catalog), route names (from the route table), and the enums below.

Adding a metric (the dispatch scheduler's queue depth and wait, say): declare it in
``Metrics.__init__`` with ``registry=self.registry`` and add a method named for the fact, or,
for a value read at scrape time, register a collector with :meth:`Metrics.add_collector`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from swarmkeeper import __version__
from swarmkeeper.metrics.history import FarmHistory

#: Seconds; API calls are mostly milliseconds, edits and restarts can wait for a backend.
#: Seconds a generation waits for a backend: none at all, up to a long queue.
DISPATCH_WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0)
#: Seconds the scheduler spends choosing a backend.
DECISION_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RestartCause(StrEnum):
    USER = "user"  # RestartBackends
    FORCE = "force"  # RestartBackends with force=true
    CRASH = "crash"  # a backend's own supervisor relaunched it after its process died


class AdoptionOutcome(StrEnum):
    """What became of a self-started process an earlier server left running (see comfyui_running)."""

    ADOPTED = "adopted"  # it answered: taken over, its models still loaded
    RELAUNCHED = "relaunched"  # alive but it did not answer in time (or it exited): stopped, launched anew
    CHANGED = "changed"  # its backend's settings changed meanwhile: stopped, launched anew
    ORPHANED = "orphaned"  # its backend is gone, disabled or of another type now: stopped
    FOREIGN = "foreign"  # its pid is gone or belongs to another process now: nothing touched


class LaunchOutcome(StrEnum):
    """How an autoscaling backend's launch of a worker ended."""

    READY = "ready"  # the worker answered at its URL and is a backend now
    DECLARED_FAILED = "declared_failed"  # the provider had no capacity (DeclareFailed)
    FAILED = "failed"  # the launch broke (no NewURL, timeout, a bad URL, a missing script)
    UNREACHABLE = "unreachable"  # it gave a URL that never answered in time


class StopCause(StrEnum):
    """Why an autoscaling backend stopped a worker."""

    IDLE = "idle"  # idle past MinIdleTime, above MinBackends
    PING = "ping"  # it did not answer its ping
    SHUTDOWN = "shutdown"  # the autoscaling backend itself was shut down (edit, delete, server stop)


#: Seconds from a launch's start to its worker answering: seconds to many minutes (a cluster queue).
WORKER_READY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class FreeOutcome(StrEnum):
    FREED = "freed"  # the backend's free_memory returned True
    DECLINED = "declined"  # it returned False (it cannot free, or had nothing to free)
    FAILED = "failed"  # it raised


class Metrics:
    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        if process:  # RSS, CPU, open files, GC: the process collectors' own families
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        self._declare_backend_counters()
        self._declare_api_metrics()
        self._declare_dispatch_metrics()
        self._declare_autoscale_metrics()
        #: The farm view's past: images per backend and the queue, per minute (api/farm_view.py).
        self.farm = FarmHistory()
        Gauge("swarmkeeper_build_info", "The running swarmkeeper's version (always 1).", ["version"],
              registry=self.registry).labels(__version__).set(1)

    def _declare_backend_counters(self) -> None:
        self._init_attempts = Counter(
            "swarmkeeper_init_attempts", "Backend init attempts started.", ["type"], registry=self.registry)
        self._init_failures = Counter(
            "swarmkeeper_init_failures", "Backend init attempts that failed; final=true when it gave up (errored).",
            ["type", "final"], registry=self.registry)
        self._status_changes = Counter(
            "swarmkeeper_status_changes", "Backend status transitions, by the status entered.", ["type", "status"],
            registry=self.registry)
        self._restarts = Counter(
            "swarmkeeper_restarts", "Backend restarts, by cause: user (RestartBackends), force (RestartBackends "
            "with force), crash (relaunched after its process died).", ["type", "cause"], registry=self.registry)
        self._frees = Counter(
            "swarmkeeper_memory_free_calls", "Calls to a backend's free-memory (FreeBackendMemory), by outcome.",
            ["type", "outcome"], registry=self.registry)
        self._adoptions = Counter(
            "swarmkeeper_adoptions", "Self-started processes an earlier server left running, by what became of "
            "them: adopted, relaunched, changed, orphaned, foreign.", ["type", "outcome"], registry=self.registry)

    def _declare_api_metrics(self) -> None:
        self._latency = Histogram(
            "swarmkeeper_api_request_duration_seconds", "Time to answer a POST /API/<Route> call, by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._requests = Counter(
            "swarmkeeper_api_requests", "POST /API/<Route> calls answered, by route and HTTP status code.",
            ["route", "code"], registry=self.registry)
        #: Each (route, code)'s two series, found once (routes and codes are few; calls are many).
        self._api_series: dict[tuple[str, int], tuple[Histogram, Counter]] = {}

    def _declare_dispatch_metrics(self) -> None:
        self._dispatch_wait = Histogram(
            "swarmkeeper_dispatch_wait_seconds", "Time a generation waited for a backend slot.",
            buckets=DISPATCH_WAIT_BUCKETS, registry=self.registry)
        self._dispatch_decision = Histogram(
            "swarmkeeper_dispatch_decision_seconds", "The scheduler's own time to choose the backend for one "
            "generation.", buckets=DECISION_BUCKETS, registry=self.registry)
        self._dispatch_outcomes = Counter(
            "swarmkeeper_dispatch_jobs", "Generations that ended (pool prompts and generation routes), by outcome: "
            "success, error, interrupted (as the backend reported), failed (no backend, or lost), cancelled.",
            ["outcome"], registry=self.registry)
        for outcome in ("success", "error", "interrupted", "failed", "cancelled"):
            self._dispatch_outcomes.labels(outcome)

    def _declare_autoscale_metrics(self) -> None:
        self._launches = Counter(
            "swarmkeeper_autoscale_launches", "Worker launches of autoscaling backends, by outcome: ready, "
            "declared_failed, failed, unreachable.", ["outcome"], registry=self.registry)
        self._stops = Counter(
            "swarmkeeper_autoscale_stops", "Workers autoscaling backends stopped, by cause: idle, ping, shutdown.",
            ["cause"], registry=self.registry)
        self._worker_ready = Histogram(
            "swarmkeeper_autoscale_worker_ready_seconds", "Time from a worker's launch to the worker answering at "
            "its URL.", buckets=WORKER_READY_BUCKETS, registry=self.registry)
        for outcome in LaunchOutcome:
            self._launches.labels(outcome)
        for cause in StopCause:
            self._stops.labels(cause)

    # --- set-up ---

    def declare_types(self, type_ids: Iterable[str]) -> None:
        """Start every per-type counter at 0, so a series exists before its first event."""
        for type_id in type_ids:
            self._init_attempts.labels(type_id)
            for final in ("false", "true"):
                self._init_failures.labels(type_id, final)
            for cause in RestartCause:
                self._restarts.labels(type_id, cause)
            for outcome in FreeOutcome:
                self._frees.labels(type_id, outcome)
            for adoption in AdoptionOutcome:
                self._adoptions.labels(type_id, adoption)

    def add_collector(self, collector: Collector) -> None:
        """Register a collector whose values are computed at scrape time."""
        self.registry.register(collector)

    # --- facts ---

    def init_attempt(self, type_id: str) -> None:
        self._init_attempts.labels(type_id).inc()

    def init_failed(self, type_id: str, *, final: bool) -> None:
        """An init attempt failed; ``final`` when no retry follows (the backend is now errored)."""
        self._init_failures.labels(type_id, "true" if final else "false").inc()

    def worker_launched(self, outcome: LaunchOutcome, seconds: float | None = None) -> None:
        """An autoscaling launch ended; ``seconds`` from its start to the worker answering (READY)."""
        self._launches.labels(outcome).inc()
        if seconds is not None:
            self._worker_ready.observe(seconds)

    def worker_stopped(self, cause: StopCause) -> None:
        self._stops.labels(cause).inc()

    def status_changed(self, type_id: str, status: str) -> None:
        self._status_changes.labels(type_id, status).inc()

    def restarted(self, type_id: str, cause: RestartCause) -> None:
        self._restarts.labels(type_id, cause).inc()

    def memory_freed(self, type_id: str, outcome: FreeOutcome) -> None:
        self._frees.labels(type_id, outcome).inc()

    def adoption(self, type_id: str, outcome: AdoptionOutcome) -> None:
        """A process left running by an earlier server was dealt with (adopted, or why not)."""
        self._adoptions.labels(type_id, outcome).inc()

    def dispatched(self, waited: float, deciding: float) -> None:
        """A generation got a backend slot after ``waited`` s; choosing it took ``deciding`` s."""
        self._dispatch_wait.observe(waited)
        self._dispatch_decision.observe(deciding)

    def job_ended(self, outcome: str, backend_id: int | None = None) -> None:
        """A generation ended (on ``backend_id``, when it reached one)."""
        self._dispatch_outcomes.labels(outcome).inc()
        if outcome == "success":
            self.farm.image_done(backend_id)
        self.farm.sample_queue()

    def api_call(self, route: str, code: int, seconds: float) -> None:
        series = self._api_series.get((route, code))
        if series is None:
            series = self._api_series[(route, code)] = (self._latency.labels(route),
                                                         self._requests.labels(route, str(code)))
        series[0].observe(seconds)
        series[1].inc()

    # --- exposition ---

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
