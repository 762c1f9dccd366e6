"""When the autoscaling backend starts or stops a worker: one pure function, data in, decision out.

Nothing here reads a clock or touches a worker: :func:`decide` takes an :class:`Observation` (the
time, the waiting requests, the workers) and the :class:`Limits`, and says what to do and why.
SwarmUI's rules (reference §1 of scale-out.md), plus one of swarmkeeper's: requests that no
running worker can serve (a model or feature none of them has, or no worker at all) start a
worker even below ``MinQueuedBeforeExpand``, when none is already starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Limits:
    """The settings that steer scaling, in seconds (the settings are in minutes)."""

    min_workers: int = 0
    max_workers: int = 5
    min_queued: int = 10
    wait_between_start: float = 60.0
    wait_after_failure: float = 120.0
    wait_between_stop: float = 60.0
    min_idle: float = 600.0

    def problem(self) -> str | None:
        """Why these limits make no sense (SwarmUI refuses to start with them), or None."""
        if self.min_workers > self.max_workers:
            return f"MinBackends ({self.min_workers}) is above MaxBackends ({self.max_workers})"
        if self.min_workers < 0:
            return f"MinBackends ({self.min_workers}) is below 0"
        if self.min_queued < 1:
            return f"MinQueuedBeforeExpand ({self.min_queued}) must be at least 1"
        for name, value in (("MinIdleTime", self.min_idle), ("MinWaitBetweenStart", self.wait_between_start),
                            ("MinWaitBetweenStop", self.wait_between_stop),
                            ("MinWaitAfterFailure", self.wait_after_failure)):
            if value < 0:
                return f"{name} ({value / 60:g}) is below 0"
        return None


@dataclass(frozen=True)
class WorkerView:
    """One worker as the policy sees it."""

    id: int
    #: Up and taking work (else still starting: connecting to its URL).
    running: bool
    #: A generation is in flight on it now.
    busy: bool
    #: When it last finished work (or came up), on the observation's clock.
    last_used: float


@dataclass(frozen=True)
class Observation:
    now: float
    #: Requests waiting for a backend slot.
    waiting: int = 0
    #: Of those, how many no running worker (nor any other running backend) can serve.
    unmet: int = 0
    workers: tuple[WorkerView, ...] = ()
    #: Launches under way that have not given a URL yet.
    launching: int = 0
    #: No start before this time (the wait after the last start).
    next_start: float = 0.0
    #: No start before this time (the wait after the last failed launch).
    retry_after: float = 0.0
    #: No stop before this time (the wait after the last stop).
    next_stop: float = 0.0

    @property
    def running(self) -> int:
        return sum(1 for worker in self.workers if worker.running)

    @property
    def starting(self) -> int:
        return self.launching + sum(1 for worker in self.workers if not worker.running)

    @property
    def active(self) -> int:
        """SwarmUI's count against MaxBackends: workers plus launches pending."""
        return self.launching + len(self.workers)


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    HOLD = "hold"


@dataclass(frozen=True)
class Decision:
    action: Action
    #: What is done and why, then the state ("3 of 5 workers running, 1 starting; ...").
    reason: str
    #: How many to start (START).
    count: int = 0
    #: Which worker to stop (STOP).
    worker: int | None = None


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.0f} s" if value < 120 else f"{value / 60:.1f} min"


def state_text(seen: Observation, limits: Limits) -> str:
    """The workers, the queue and the next allowed start, in one line."""
    parts = [f"{seen.running} of {limits.max_workers} workers running"]
    if seen.starting:
        parts[0] += f", {seen.starting} starting"
    waiting = f"{seen.waiting} request{'s' if seen.waiting != 1 else ''} waiting"
    if seen.unmet:
        waiting += f" ({seen.unmet} that no running worker can serve)"
    parts.append(waiting)
    allowed = max(seen.next_start, seen.retry_after)
    if allowed > seen.now:
        parts.append(f"next start allowed in {_seconds(allowed - seen.now)}")
    return "; ".join(parts)


def decide(seen: Observation, limits: Limits) -> Decision:
    """What to do now. At most one kind of action per call; the caller acts and calls again."""
    state = state_text(seen, limits)
    start = _start(seen, limits)
    if start is not None:
        count, why = start
        return Decision(Action.START, f"Starting {count} worker{'s' if count > 1 else ''}: {why}. {state}", count)
    stop = _stop(seen, limits)
    if stop is not None:
        worker, why = stop
        return Decision(Action.STOP, f"Stopping worker #{worker}: {why}. {state}", worker=worker)
    return Decision(Action.HOLD, f"{_hold(seen, limits)}. {state}")


def _start(seen: Observation, limits: Limits) -> tuple[int, str] | None:
    room = limits.max_workers - seen.active
    if room <= 0:
        return None
    if seen.now < seen.retry_after:
        return None
    missing = limits.min_workers - seen.active
    if missing > 0:  # refilling to the minimum waits only after a failure, as SwarmUI's init launches at once
        return min(missing, room), f"fewer than MinBackends ({limits.min_workers})"
    if seen.now < seen.next_start:
        return None
    if seen.waiting >= limits.min_queued:
        return 1, f"{seen.waiting} requests waiting (MinQueuedBeforeExpand is {limits.min_queued})"
    if seen.unmet > 0 and seen.starting == 0:
        return 1, f"{seen.unmet} waiting request{'s' if seen.unmet > 1 else ''} no running worker can serve"
    return None


def _stop(seen: Observation, limits: Limits) -> tuple[int, str] | None:
    if len(seen.workers) <= limits.min_workers or seen.now < seen.next_stop:
        return None
    idle = [w for w in seen.workers if w.running and not w.busy and seen.now - w.last_used >= limits.min_idle]
    if not idle:
        return None
    longest = min(idle, key=lambda worker: (worker.last_used, worker.id))
    return longest.id, f"idle for {_seconds(seen.now - longest.last_used)} (MinIdleTime is {_seconds(limits.min_idle)})"


def _hold(seen: Observation, limits: Limits) -> str:
    """Why nothing is done, the most telling reason first."""
    wants_more = seen.waiting >= limits.min_queued or (seen.unmet > 0 and seen.starting == 0)
    if seen.active < limits.min_workers and seen.now < seen.retry_after:
        return f"Not refilling to MinBackends ({limits.min_workers}) yet: waiting after a failed launch"
    if wants_more and seen.active >= limits.max_workers:
        return f"Not starting a worker: MaxBackends ({limits.max_workers}) reached"
    if wants_more and seen.now < seen.retry_after:
        return "Not starting a worker yet: waiting after a failed launch (MinWaitAfterFailure)"
    if wants_more:
        return "Not starting a worker yet: waiting after the last start (MinWaitBetweenStart)"
    if seen.unmet > 0:
        return "Waiting for the starting worker"
    if seen.waiting:
        return f"Not starting a worker: fewer than MinQueuedBeforeExpand ({limits.min_queued}) requests waiting"
    if len(seen.workers) > limits.min_workers and seen.now < seen.next_stop:
        return "Not stopping a worker yet: waiting after the last stop (MinWaitBetweenStop)"
    return "Holding"
