"""Bringing backends up and down: the init queue, retries, and the three kinds of shutdown.

SwarmUI's rules (reference §4.3 to §4.5): fast-load types initialise concurrently, the others
one at a time through a FIFO queue; a failed init is retried up to ``MaxBackendInitAttempts``
times, 1 s apart; a clean shutdown waits while the backend is saturated. Unlike SwarmUI, an init in
progress is cancelled when the backend is shut down (an edit, a toggle, a delete), so a backend
stuck loading can always be recovered.

Unlike SwarmUI, a failing backend never delays another. SwarmUI waits the retry pause inside its
one sequential queue and sends every retry (fast types' too) through it, so 300 unreachable
backends hold every other backend's start or retry for minutes. Here the pause is a timer outside
any queue, and a retry goes where the type's first attempt went: a fast type's runs at once beside
every other init (an init is one HTTP exchange; a slow one only waits for its own answer); a
sequential type's (a self-started ComfyUI: one at a time, so two never start on one GPU at once)
joins the back of the sequential queue, which it holds only while its attempt runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.exceptions import BackendConfigError, BackendError

log = logging.getLogger("swarmkeeper.lifecycle")


@dataclass(frozen=True)
class InitPolicy:
    """How hard init tries. Names are the Settings.fds ones users see."""

    max_init_attempts: int = 3  # Backends.MaxBackendInitAttempts: retries after the first try
    all_fast: bool = False  # Backends.AllBackendsLoadFast: no sequential queue at all
    retry_delay: float = 1.0  # seconds between a failure and the retry
    #: Up to this fraction of ``retry_delay`` added per backend (by its id), so hundreds of backends
    #: that failed together do not all retry in the same instant, stalling the server for that long.
    retry_spread: float = 0.25
    program_shutdown_wait: float = 5.0  # seconds a saturated backend may delay program shutdown


class Cancellable(Protocol):
    def cancel(self) -> None: ...


#: Runs a callback after a delay in seconds (the event loop's ``call_later``; tests pass their own).
CallLater = Callable[[float, Callable[[], None]], Cancellable]


def describe_error(error: BaseException) -> str:
    """A failure as a status reason: our own errors carry readable text already."""
    if isinstance(error, BackendError) and str(error):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Lifecycle:
    def __init__(self, registry: BackendRegistry, policy: InitPolicy, *, call_later: CallLater | None = None) -> None:
        self.registry = registry
        self.policy = policy
        self._call_later = call_later
        #: Retries waiting their pause (cancelled at program shutdown).
        self._timers: set[Cancellable] = set()
        self.stopping = asyncio.Event()
        self._queue: asyncio.Queue[tuple[BackendRecord, int]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Backends removed from the registry and still shutting down (a delete under way).
        self._retiring: set[BackendRecord] = set()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._drain_queue(), name="backend-init-queue")

    # --- init ---

    def schedule_init(self, record: BackendRecord, *, sequential: bool = False) -> None:
        """Set ``waiting`` and start an init: at once for fast types, else through the queue."""
        record.init_generation += 1
        record.set_status(BackendStatus.WAITING, "Waiting to load...")
        self._begin(record, sequential=sequential)

    def _begin(self, record: BackendRecord, *, sequential: bool = False) -> None:
        """Start the current generation's attempt: now for fast types, else at the queue's back."""
        if (record.type.fast_load or self.policy.all_fast) and not sequential:
            self._start_task(record)
        else:
            self._queue.put_nowait((record, record.init_generation))

    def _start_task(self, record: BackendRecord) -> asyncio.Task[None]:
        task = asyncio.create_task(self._attempt(record, record.init_generation), name=f"init-{record.id}")
        record.init_task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _drain_queue(self) -> None:
        """The sequential init queue: one backend at a time, each awaited to the end."""
        while True:
            record, generation = await self._queue.get()
            if record.removed or generation != record.init_generation or self.stopping.is_set():
                continue
            task = self._start_task(record)
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await asyncio.shield(task)
                except Exception:  # a bug in an attempt must not stop every later init
                    log.exception("Init of backend #%s failed unexpectedly", record.id)

    async def _attempt(self, record: BackendRecord, generation: int) -> None:
        if not record.enabled:
            record.set_status(BackendStatus.DISABLED, "Disabled by the user.")
            return
        record.init_attempts += 1
        record.services.metrics.init_attempt(record.type.id)
        try:
            await record.backend.init()
        except asyncio.CancelledError:
            raise
        except BackendConfigError as error:
            record.services.metrics.init_failed(record.type.id, final=True)
            record.set_status(BackendStatus.ERRORED, describe_error(error))
        except Exception as error:  # any failure of backend code becomes a reason, never a crash
            log.debug("Init of backend %s failed", record.id, exc_info=True)
            self._failed(record, generation, describe_error(error))

    def _failed(self, record: BackendRecord, generation: int, reason: str) -> None:
        attempts, allowed = record.init_attempts, self.policy.max_init_attempts + 1
        record.services.metrics.init_failed(record.type.id, final=attempts > self.policy.max_init_attempts)
        if record.init_attempts <= self.policy.max_init_attempts:
            log.error("Error while initializing backend #%s - will retry: %s", record.id, reason)
            record.set_status(BackendStatus.WAITING, f"Load failed, will retry ({attempts}/{allowed}): {reason}")
            self._retry_later(record, generation)
        else:
            log.error("Final error (%s) while initializing backend #%s, giving up: %s", attempts, record.id, reason)
            record.set_status(BackendStatus.ERRORED, f"{reason} (gave up after {attempts} attempts)")

    def retry_pause(self, record: BackendRecord) -> float:
        """The pause before this backend's retry: ``retry_delay`` plus its share of the spread
        (the golden ratio's multiples of the id, which fall evenly apart for any run of ids)."""
        return self.policy.retry_delay * (1 + self.policy.retry_spread * (record.id * 0.6180339887 % 1))

    def _retry_later(self, record: BackendRecord, generation: int) -> None:
        """After the pause, the retry starts as the first attempt did; nothing waits meanwhile.
        A shutdown, edit, toggle or restart in between (a new generation) makes it a no-op."""
        def retry() -> None:
            self._timers.discard(timer)
            if generation != record.init_generation or record.removed or self.stopping.is_set():
                return
            record.init_generation += 1
            self._begin(record)

        call_later = self._call_later or asyncio.get_running_loop().call_later
        timer = call_later(self.retry_pause(record), retry)
        self._timers.add(timer)

    # --- shutdown ---

    async def hard_shutdown(self, record: BackendRecord, *, kill: bool = False) -> None:
        """Stop now: cancel an init in progress, then the type's own shutdown (its kill with ``kill``)."""
        record.init_generation += 1
        task, record.init_task = record.init_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        record.backend.current_model = None
        try:
            await (record.backend.kill() if kill else record.backend.shutdown())
        except Exception:
            log.exception("Backend #%s failed to shut down cleanly", record.id)
        record.set_status(BackendStatus.DISABLED, "Shut down.")

    async def clean_shutdown(self, record: BackendRecord) -> None:
        """Reserve the backend, wait while it is saturated, then stop it."""
        record.shutdown_reserved = True
        try:
            await self.registry.wait_unsaturated(record, self.stopping)
            await self.hard_shutdown(record)
        finally:
            record.shutdown_reserved = False

    async def retire(self, record: BackendRecord) -> None:
        """Clean shutdown of a backend that has left the registry (deleted). Until it is done,
        program shutdown still stops it: no process swarmkeeper started outlives a graceful stop."""
        self._retiring.add(record)
        await self.clean_shutdown(record)
        self._retiring.discard(record)  # not when cancelled (a request cut off at exit): shutdown_all stops it

    async def shutdown_all(self) -> None:
        """Program shutdown: every backend in parallel (those still retiring too), each waiting
        up to a few seconds for its running generations."""
        self.stopping.set()
        if self._worker is not None:
            self._worker.cancel()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        records = [*self.registry.all(), *self._retiring]
        await asyncio.gather(*(self._stop_at_exit(record) for record in records))

    async def _stop_at_exit(self, record: BackendRecord) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.policy.program_shutdown_wait):
                await self.registry.wait_unsaturated(record)
        await self.hard_shutdown(record)
