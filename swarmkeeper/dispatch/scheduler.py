"""The scheduler: requests wait here for a backend slot (SwarmUI's handler loop, reference §7.1).

No I/O and no locks: it reads registry records, claims slots (``registry.claim``), and resolves
each request's future. Time comes from an injected clock, so tests drive it with fake records and
a fake clock through :meth:`Scheduler.pump`.

When passes run:

- at once for a new request (so one no backend can serve fails fast, before it is queued);
- on every release, from the head of the queue until no backend has a free slot left;
- a full pass over every waiting request when a backend changes (``wake(full=True)``) and at
  least once a second, which is also when timeouts and the stall guard are checked.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.dispatch.free import FreeBackends
from swarmkeeper.dispatch.requests import (
    REFUSED_INTRO,
    STALLED,
    TIMEOUT,
    Assign,
    Fail,
    Grant,
    NoBackend,
    Policy,
    Request,
)
from swarmkeeper.dispatch.select import refusal_lines, select

log = logging.getLogger("swarmkeeper.dispatch")
Clock = Callable[[], float]


@dataclass
class SchedulerStats:
    """What the scheduler did, for metrics and the benchmark."""

    assigned: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    #: Seconds spent deciding, over every assignment (the scheduler's own cost per dispatch).
    decision_seconds: float = 0.0
    #: Called with (seconds waited, seconds spent deciding) on each assignment.
    on_assign: Callable[[float, float], None] | None = None
    #: Called with the kind of failure (no_backend, timeout, stalled, cancelled).
    on_fail: Callable[[str], None] | None = None

    def assign(self, waited: float, deciding: float) -> None:
        self.assigned += 1
        self.decision_seconds += deciding
        if self.on_assign is not None:
            self.on_assign(waited, deciding)

    def fail(self, kind: str) -> None:
        self.failed[kind] += 1
        if self.on_fail is not None:
            self.on_fail(kind)


def _order(request: Request) -> tuple[int, int]:
    return (0 if request.front else 1, request.seq)


class Scheduler:
    def __init__(self, registry: BackendRegistry, policy: Callable[[], Policy], *,
                 clock: Clock = time.monotonic, on_stall: Callable[[], None] | None = None) -> None:
        self.registry = registry
        #: The backends with a free slot, kept from the registry's changes (a decision looks only there).
        self.free = FreeBackends(registry)
        self.policy = policy
        self.clock = clock
        self.on_stall = on_stall
        self.stats = SchedulerStats()
        self._pending: list[Request] = []
        self._seq = itertools.count()
        self._last_served = clock()
        self._last_full = clock()
        self._wake = asyncio.Event()
        self._full_wanted = False

    # --- requests ---

    @property
    def pending(self) -> list[Request]:
        """Waiting requests, in the order they are served."""
        return list(self._pending)

    def submit(self, request: Request) -> asyncio.Future[Grant]:
        """Queue a request and decide it at once when possible (a NoBackend failure is immediate)."""
        request.created = self.clock()
        request.seq = next(self._seq)
        request.future = asyncio.get_running_loop().create_future()
        if not self._pending:
            self._last_served = request.created  # the stall guard counts from the first waiter
        started = time.perf_counter()
        self._try(request, request.created, self.registry.all(), self.policy(), free=self.free.records(),
                  started=started)
        if not request.future.done():
            bisect.insort(self._pending, request, key=_order)
        return request.future

    async def acquire(self, request: Request) -> Grant:
        """Wait for a slot; NoBackend when none will come. Cancelling the wait withdraws the request
        (and hands back a slot it had just been given)."""
        future = self.submit(request)
        try:
            return await future
        except asyncio.CancelledError:
            self.withdraw(request)
            raise

    def withdraw(self, request: Request) -> None:
        """Take a request back: out of the queue, or its slot handed back if it was just given one."""
        with contextlib.suppress(ValueError):
            self._pending.remove(request)
        future = request.future
        if future is None:
            return
        if future.done() and not future.cancelled() and future.exception() is None:
            self.release(future.result().record)
        elif not future.done():
            future.cancel()

    def release(self, record: BackendRecord) -> None:
        """Hand a slot back and serve the queue at once."""
        self.registry.release(record)
        self.pump()

    def cancel_all(self, message: str) -> None:
        """Fail every waiting request (server shutdown)."""
        for request in self._pending:
            self._reject(request, message, "cancelled")
        self._pending.clear()

    # --- passes ---

    def wake(self, *, full: bool = False) -> None:
        """Something changed: have the loop run a pass soon (a full one if asked). With nothing
        waiting there is nothing a pass could do (the backends' churn at 1,000 backends would
        otherwise run hundreds of empty passes a second)."""
        if not self._pending:
            return
        self._full_wanted = self._full_wanted or full
        self._wake.set()

    def pump(self, *, full: bool = False) -> None:
        """One pass: assign what can be assigned now, in queue order; a full pass also re-checks
        every waiting request (failures, timeouts, the stall guard)."""
        now = self.clock()
        records = self.registry.all()
        policy = self.policy()
        if full:
            self._last_full = now
            self._expire(now, records, policy)
        for request in list(self._pending):
            if request.future is None or request.future.done():
                self._pending.remove(request)
                continue
            started = time.perf_counter()
            free = self.free.records()
            if not full and not free:
                break  # a quick pass only serves what a free slot can take
            self._try(request, now, records, policy, free=free, started=started)
            if request.future.done():
                self._pending.remove(request)

    def _try(self, request: Request, now: float, records: list[BackendRecord], policy: Policy, *,
             free: Sequence[BackendRecord], started: float) -> None:
        """Decide one request; ``started`` is when deciding began (the stats count from there)."""
        decision = select(request, records, now, policy, free)
        if isinstance(decision, Assign):
            self.registry.claim(decision.record)
            self._last_served = now
            waited = now - request.created
            self.stats.assign(waited, time.perf_counter() - started)
            assert request.future is not None
            grant = Grant(decision.record, decision.loads_model, waited)
            request.future.set_result(grant)
            if request.on_grant is not None:
                request.on_grant(grant)
        elif isinstance(decision, Fail):
            self._last_served = now
            self._reject(request, decision.message, "no_backend")

    def _reject(self, request: Request, message: str, kind: str) -> None:
        if request.future is not None and not request.future.done():
            request.future.set_exception(NoBackend(message))
            request.future.exception()  # retrieved: an abandoned request logs no warning
            self.stats.fail(kind)

    def _expire(self, now: float, records: list[BackendRecord], policy: Policy) -> None:
        """Per-request timeouts, then the stall guard."""
        for request in self._pending:
            if policy.request_timeout > 0 and now - request.created >= policy.request_timeout:
                lines = refusal_lines(request, records)
                detail = REFUSED_INTRO + "".join(f"\n- {line}" for line in lines) if lines else ""
                self._reject(request, TIMEOUT + detail, "timeout")
        live = [request for request in self._pending if request.future is not None and not request.future.done()]
        if not live or policy.stall_timeout <= 0 or now - self._last_served < policy.stall_timeout:
            return
        if policy.restart_on_stall and self.on_stall is not None:
            log.error("No backend has taken a request in %g minutes: restarting every backend",
                      policy.stall_timeout / 60)
            self._last_served = now
            self.on_stall()
            return
        message = STALLED.format(minutes=f"{policy.stall_timeout / 60:g}")
        log.error("%s Failing %s waiting requests.", message, len(live))
        for request in live:
            self._reject(request, message, "stalled")

    # --- the loop ---

    def next_deadline(self) -> float:
        """Seconds until the next full pass is due."""
        return max(0.0, self._last_full + self.policy().full_pass_interval - self.clock())

    async def run(self) -> None:
        """Passes forever: when woken, and a full pass at least every full_pass_interval."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.next_deadline()):
                    await self._wake.wait()
            self._wake.clear()
            full, self._full_wanted = self._full_wanted or self.next_deadline() <= 0, False
            self.pump(full=full)


def no_backend_text(error: BaseException) -> str:
    return error.message if isinstance(error, NoBackend) else str(error)
