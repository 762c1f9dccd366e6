"""The scheduler with fake records and a fake clock: candidates, refusal reasons, strategies, model
preference, timeouts and the stall guard (no network, no real time)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.dispatch.requests import (
    NO_BACKENDS,
    NO_MATCH,
    TIMEOUT,
    LoadOrder,
    NoBackend,
    Policy,
    Refusal,
    Request,
    Strategy,
)
from swarmkeeper.dispatch.scheduler import Scheduler
from tests.dispatch_support import Clock, fake_record


@dataclass
class Pool:
    """A registry of fake records and a scheduler over it, on a fake clock."""

    registry: BackendRegistry = field(default_factory=BackendRegistry)
    clock: Clock = field(default_factory=Clock)
    policy: Policy = field(default_factory=Policy)
    stalls: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.registry, lambda: self.policy, clock=self.clock,
                                   on_stall=lambda: self.stalls.append(self.clock.now))

    def add(self, backend_id: int, **fields: Any) -> BackendRecord:
        record = fake_record(backend_id, **fields)
        self.registry.add(record)
        return record


def anything(record: BackendRecord) -> Refusal | None:
    return None


def request(**fields: Any) -> Request:
    return Request(check=fields.pop("check", anything), **fields)


def granted(future: asyncio.Future[Any]) -> int:
    assert future.done(), "the request is still waiting"
    return int(future.result().record.id)


def failure(future: asyncio.Future[Any]) -> str:
    assert future.done() and isinstance(future.exception(), NoBackend), future
    return str(future.exception().message)  # type: ignore[union-attr]


async def test_ties_go_to_the_lower_id_and_each_backend_takes_max_usages() -> None:
    pool = Pool()
    pool.add(1, max_usages=2)
    pool.add(0, max_usages=2)
    futures = [pool.scheduler.submit(request()) for _ in range(5)]
    assert [granted(f) for f in futures[:4]] == [0, 1, 0, 1]  # fewest claims first, then the lower id
    assert not futures[4].done()
    assert pool.registry.get(0).usages == 2 and pool.registry.get(1).usages == 2  # type: ignore[union-attr]


async def test_a_release_serves_the_queue_in_order_and_front_jumps_it() -> None:
    pool = Pool()
    backend = pool.add(0)
    first = pool.scheduler.submit(request())
    waiting = pool.scheduler.submit(request())
    urgent = pool.scheduler.submit(request(front=True))
    assert granted(first) == 0 and not waiting.done() and not urgent.done()
    pool.scheduler.release(backend)
    assert granted(urgent) == 0 and not waiting.done()
    pool.scheduler.release(backend)
    assert granted(waiting) == 0


async def test_a_grant_is_told_in_the_pass_that_makes_it() -> None:
    pool = Pool()
    backend = pool.add(0)
    told: list[tuple[int, bool]] = []
    first = pool.scheduler.submit(request())
    waiting = request()
    waiting.on_grant = lambda grant: told.append((int(grant.record.id), waiting.future is not None and
                                                  waiting.future.done()))
    future = pool.scheduler.submit(waiting)
    assert granted(first) == 0 and not told
    pool.scheduler.release(backend)
    assert told == [(0, True)] and granted(future) == 0  # told before release returned, its future already set


async def test_no_running_backend_fails_at_once_with_each_backends_reason() -> None:
    pool = Pool()
    pool.add(0, enabled=False, title="gpu0")
    pool.add(1, status=BackendStatus.ERRORED)
    pool.registry.get(1).status_reason = "ComfyUI at x stopped answering"  # type: ignore[union-attr]
    message = failure(pool.scheduler.submit(request()))
    assert message.startswith(NO_BACKENDS + " Backends refused for the following reason(s):")
    assert "\n- backend #0 (gpu0): disabled" in message
    assert "\n- backend #1: errored: ComfyUI at x stopped answering" in message


async def test_a_filter_that_refuses_every_backend_fails_with_its_reasons() -> None:
    pool = Pool()
    pool.add(0)
    pool.add(1)

    def only_nodes(record: BackendRecord) -> Refusal | None:
        return Refusal("missing node class(es) FancyNode") if record.id == 0 else Refusal("missing model 'x'")

    message = failure(pool.scheduler.submit(request(check=only_nodes)))
    assert message.startswith(NO_MATCH)
    assert "- backend #0: missing node class(es) FancyNode" in message and "- backend #1: missing model 'x'" in message


async def test_a_loading_backend_makes_the_request_wait_then_serve() -> None:
    pool = Pool()
    loading = pool.add(0, status=BackendStatus.LOADING)
    future = pool.scheduler.submit(request())
    assert not future.done()
    loading.status = BackendStatus.RUNNING
    pool.scheduler.pump(full=True)
    assert granted(future) == 0


async def test_a_transient_refusal_waits_instead_of_failing() -> None:
    pool = Pool()
    pool.add(0)
    known = False

    def remote(record: BackendRecord) -> Refusal | None:
        return None if known else Refusal("node list not known yet", transient=True)

    future = pool.scheduler.submit(request(check=remote))
    assert not future.done()
    known = True
    pool.scheduler.pump(full=True)
    assert granted(future) == 0


async def test_pinning_takes_the_backend_or_its_children_only() -> None:
    pool = Pool()
    pool.add(0)
    parent = pool.add(1)
    child = pool.add(-1)
    child.parent = parent
    parent.status = BackendStatus.RUNNING
    parent.backend.max_usages = 0  # a control instance takes no work itself
    assert granted(pool.scheduler.submit(request(pin=1))) == -1
    message = failure(pool.scheduler.submit(request(pin=7)))
    assert "backend #0: not the requested backend #7" in message


async def test_a_backend_that_failed_the_request_is_avoided() -> None:
    pool = Pool()
    pool.add(0)
    pool.add(1)
    assert granted(pool.scheduler.submit(request(avoid={0}))) == 1
    assert "already failed this request" in failure(pool.scheduler.submit(request(avoid={0, 1})))


async def test_swarmui_prefers_the_backend_holding_the_model() -> None:
    pool = Pool()
    pool.add(0, max_usages=2, model="a.safetensors")
    pool.add(1, max_usages=2, model="b.safetensors")
    first = pool.scheduler.submit(request(model="b.safetensors"))
    second = pool.scheduler.submit(request(model="b"))  # SwarmUI's name without the extension
    assert granted(first) == 1 and granted(second) == 1
    assert first.result().loads_model is False


async def test_least_busy_spreads_work_even_away_from_the_model() -> None:
    pool = Pool(policy=Policy(strategy=Strategy.LEAST_BUSY))
    pool.add(0, max_usages=2, model="a")
    pool.add(1, max_usages=2, model="b")
    first = pool.scheduler.submit(request(model="a"))
    second = pool.scheduler.submit(request(model="a"))
    assert (granted(first), granted(second)) == (0, 1)
    assert second.result().loads_model is True


async def test_a_model_nobody_holds_loads_on_the_least_recently_used_idle_backend() -> None:
    pool = Pool()
    for backend_id, used in ((0, 50.0), (1, 10.0), (2, None)):
        record = pool.add(backend_id, max_usages=2, model="old")
        record.last_used = used
    assert granted(pool.scheduler.submit(request(model="new"))) == 2  # never used is the oldest
    pool.policy = Policy(load_order=LoadOrder.FIRST_FREE)
    grant = pool.scheduler.submit(request(model="other"))
    assert granted(grant) == 0 and grant.result().loads_model is True


async def test_a_busy_holder_of_the_model_is_waited_for_briefly_before_loading_elsewhere() -> None:
    pool = Pool()
    holder = pool.add(0, model="m")
    pool.add(1, model="other")
    pool.add(2, model="other")
    pool.registry.claim(holder)  # busy
    future = pool.scheduler.submit(request(model="m"))
    assert not future.done()
    pool.clock.now += pool.policy.model_spread_delay
    pool.scheduler.pump(full=True)
    assert granted(future) == 1 and future.result().loads_model


async def test_the_per_request_timeout_says_which_backends_are_busy() -> None:
    pool = Pool(policy=Policy(request_timeout=60.0))
    busy = pool.add(0, title="only")
    pool.registry.claim(busy)
    future = pool.scheduler.submit(request())
    pool.clock.now += 59
    pool.scheduler.pump(full=True)
    assert not future.done()
    pool.clock.now += 1
    pool.scheduler.pump(full=True)
    message = failure(future)
    assert message.startswith(TIMEOUT) and "backend #0 (only): saturated (1 of 1 jobs)" in message
    assert pool.scheduler.pending == []


async def test_the_stall_guard_fails_every_waiting_request() -> None:
    pool = Pool(policy=Policy(stall_timeout=120 * 60.0))
    busy = pool.add(0)
    pool.registry.claim(busy)
    futures = [pool.scheduler.submit(request()) for _ in range(3)]
    pool.clock.now += 120 * 60
    pool.scheduler.pump(full=True)
    assert [failure(f) for f in futures] == ["No backend has responded in 120 minutes."] * 3
    assert pool.scheduler.stats.failed["stalled"] == 3


async def test_the_stall_guard_restarts_instead_when_asked() -> None:
    pool = Pool(policy=Policy(stall_timeout=60.0, restart_on_stall=True))
    busy = pool.add(0)
    pool.registry.claim(busy)
    future = pool.scheduler.submit(request())
    pool.clock.now += 61
    pool.scheduler.pump(full=True)
    assert pool.stalls == [pool.clock.now] and not future.done()


async def test_a_withdrawn_request_gives_its_slot_back() -> None:
    pool = Pool()
    backend = pool.add(0)
    waiting = request()
    pool.scheduler.submit(request())
    pool.scheduler.submit(waiting)
    pool.scheduler.withdraw(waiting)
    assert pool.scheduler.pending == []
    assert waiting.future is not None and waiting.future.cancelled()
    just_granted = request()
    pool.scheduler.release(backend)
    pool.scheduler.submit(just_granted)
    pool.scheduler.withdraw(just_granted)  # granted, then abandoned: the slot comes back
    assert backend.usages == 0


async def test_acquire_cancelled_while_waiting_leaves_nothing_behind() -> None:
    pool = Pool()
    backend = pool.add(0)
    pool.scheduler.submit(request())
    task = asyncio.create_task(pool.scheduler.acquire(request()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.scheduler.pending == [] and backend.usages == 1


async def test_disabled_and_reserved_backends_are_no_candidates() -> None:
    pool = Pool()
    reserved = pool.add(0)
    reserved.reservations = 1
    shutting = pool.add(1)
    shutting.shutdown_reserved = True
    pool.add(2, max_usages=0)
    future = pool.scheduler.submit(request())
    assert not future.done()  # the reserved ones may come back: wait
    reserved.reservations = 0
    pool.scheduler.pump(full=True)
    assert granted(future) == 0


def test_the_policy_comes_from_settings_fds() -> None:
    from swarmkeeper.config import BackendsSettings

    settings = BackendsSettings(SchedulingStrategy="least_busy", ModelLoadOrderPreference="first_free",
                                PerRequestTimeoutMinutes=2, MaxTimeoutMinutes=3, ForceRestartOnTimeout=True)
    policy = Policy.of(settings)
    assert policy == Policy(strategy=Strategy.LEAST_BUSY, load_order=LoadOrder.FIRST_FREE, request_timeout=120.0,
                            stall_timeout=180.0, restart_on_stall=True)
    assert Policy.of(BackendsSettings(SchedulingStrategy="bogus")).strategy is Strategy.SWARMUI
