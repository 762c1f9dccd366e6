"""The autoscaling policy, rule by rule, with a fake clock (the observation's ``now``)."""

from __future__ import annotations

from swarmkeeper.backends.autoscale_policy import Action, Limits, Observation, WorkerView, decide

LIMITS = Limits(min_workers=0, max_workers=3, min_queued=2, wait_between_start=60, wait_after_failure=120,
                wait_between_stop=30, min_idle=600)


def worker(number: int, *, running: bool = True, busy: bool = False, last_used: float = 0.0) -> WorkerView:
    return WorkerView(number, running, busy, last_used)


def test_nothing_waiting_nothing_running_holds() -> None:
    decision = decide(Observation(now=1000), LIMITS)
    assert decision.action is Action.HOLD
    assert decision.reason == "Holding. 0 of 3 workers running; 0 requests waiting"


def test_fills_to_min_at_once_without_waiting_requests() -> None:
    decision = decide(Observation(now=0), Limits(min_workers=2, max_workers=3))
    assert (decision.action, decision.count) == (Action.START, 2)
    assert decision.reason.startswith("Starting 2 workers: fewer than MinBackends (2)")


def test_refill_counts_starting_workers_and_launches() -> None:
    seen = Observation(now=0, workers=(worker(-1, running=False),), launching=1)
    assert decide(seen, Limits(min_workers=2, max_workers=3)).action is Action.HOLD


def test_refill_waits_after_a_failure_only() -> None:
    limits = Limits(min_workers=1, max_workers=3)
    assert decide(Observation(now=10, next_start=50), limits).action is Action.START  # not the start wait
    held = decide(Observation(now=10, retry_after=50), limits)
    assert held.action is Action.HOLD
    assert "waiting after a failed launch" in held.reason and "next start allowed in 40 s" in held.reason


def test_expands_at_min_queued() -> None:
    seen = Observation(now=100, waiting=2, workers=(worker(-1),))
    decision = decide(seen, LIMITS)
    assert (decision.action, decision.count) == (Action.START, 1)
    assert decision.reason == ("Starting 1 worker: 2 requests waiting (MinQueuedBeforeExpand is 2). "
                               "1 of 3 workers running; 2 requests waiting")


def test_below_min_queued_holds_and_says_so() -> None:
    decision = decide(Observation(now=100, waiting=1, workers=(worker(-1),)), LIMITS)
    assert decision.action is Action.HOLD
    assert decision.reason.startswith("Not starting a worker: fewer than MinQueuedBeforeExpand (2)")


def test_wait_between_starts() -> None:
    seen = Observation(now=100, waiting=5, workers=(worker(-1),), next_start=140)
    decision = decide(seen, LIMITS)
    assert decision.action is Action.HOLD
    assert decision.reason == ("Not starting a worker yet: waiting after the last start (MinWaitBetweenStart). "
                               "1 of 3 workers running; 5 requests waiting; next start allowed in 40 s")
    assert decide(Observation(now=140, waiting=5, workers=(worker(-1),), next_start=140), LIMITS).action is Action.START


def test_wait_after_failure() -> None:
    seen = Observation(now=100, waiting=5, retry_after=220)
    decision = decide(seen, LIMITS)
    assert decision.action is Action.HOLD
    assert "MinWaitAfterFailure" in decision.reason and "next start allowed in 2.0 min" in decision.reason


def test_max_counts_workers_and_pending_launches() -> None:
    seen = Observation(now=100, waiting=9, workers=(worker(-1), worker(-2)), launching=1)
    decision = decide(seen, LIMITS)
    assert decision.action is Action.HOLD
    assert decision.reason == ("Not starting a worker: MaxBackends (3) reached. "
                               "2 of 3 workers running, 1 starting; 9 requests waiting")


def test_unmet_requests_start_a_worker_below_min_queued() -> None:
    decision = decide(Observation(now=0, waiting=1, unmet=1), LIMITS)
    assert (decision.action, decision.count) == (Action.START, 1)
    assert decision.reason.startswith("Starting 1 worker: 1 waiting request no running worker can serve")


def test_unmet_requests_wait_for_a_starting_worker() -> None:
    decision = decide(Observation(now=0, waiting=1, unmet=1, launching=1), LIMITS)
    assert decision.action is Action.HOLD
    assert decision.reason.startswith("Waiting for the starting worker. 0 of 3 workers running, 1 starting")


def test_stops_the_longest_idle_worker_above_min() -> None:
    workers = (worker(-1, last_used=300), worker(-2, last_used=100), worker(-3, busy=True, last_used=0))
    decision = decide(Observation(now=1000, workers=workers), LIMITS)
    assert (decision.action, decision.worker) == (Action.STOP, -2)
    assert decision.reason.startswith("Stopping worker #-2: idle for 15.0 min (MinIdleTime is 10.0 min)")


def test_no_stop_before_min_idle_or_of_a_busy_or_starting_worker() -> None:
    workers = (worker(-1, last_used=500), worker(-2, busy=True), worker(-3, running=False))
    assert decide(Observation(now=1000, workers=workers), LIMITS).action is Action.HOLD


def test_never_below_min() -> None:
    limits = Limits(min_workers=1, max_workers=3, min_idle=0)
    assert decide(Observation(now=1000, workers=(worker(-1),)), limits).action is Action.HOLD


def test_wait_between_stops() -> None:
    workers = (worker(-1), worker(-2))
    decision = decide(Observation(now=1000, workers=workers, next_stop=1010), LIMITS)
    assert decision.action is Action.HOLD
    assert decision.reason.startswith("Not stopping a worker yet: waiting after the last stop")


def test_start_wins_over_stop() -> None:
    workers = (worker(-1), worker(-2, busy=True))
    decision = decide(Observation(now=1000, waiting=4, workers=workers), LIMITS)
    assert decision.action is Action.START


def test_nonsensical_limits_are_named() -> None:
    assert Limits(min_workers=4, max_workers=2).problem() == "MinBackends (4) is above MaxBackends (2)"
    assert Limits(min_queued=0).problem() == "MinQueuedBeforeExpand (0) must be at least 1"
    assert Limits(min_idle=-60).problem() == "MinIdleTime (-1) is below 0"
    assert Limits().problem() is None
