"""Init retries wait outside the init queue (issue 15, point 4): a failing backend never delays
another's start or retry. The retry pause is a timer the test fires by hand, so nothing here
depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmkeeper.backends.base import BackendServices, BackendType
from swarmkeeper.backends.lifecycle import InitPolicy, Lifecycle
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.testing.dummy_backend import DUMMY, DUMMY_SEQUENTIAL, DummySettings


@dataclasses.dataclass(eq=False)
class Pause:
    delay: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimer:
    """The lifecycle's ``call_later``: holds every retry pause until the test ends it."""

    def __init__(self) -> None:
        self.pending: list[Pause] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> Pause:
        pause = Pause(delay, callback)
        self.pending.append(pause)
        return pause

    def fire(self) -> int:
        """End every pause now; how many retries that let go."""
        due, self.pending = self.pending, []
        for pause in due:
            if not pause.cancelled:
                pause.callback()
        return len(due)


class Bench:
    """A lifecycle over dummy backends; ``events`` is every status change, in order."""

    def __init__(self, max_init_attempts: int = 3) -> None:
        self.timer = ManualTimer()
        self.registry = BackendRegistry()
        self.lifecycle = Lifecycle(self.registry, InitPolicy(max_init_attempts=max_init_attempts),
                                   call_later=self.timer)
        self.events: list[tuple[int, BackendStatus, str]] = []
        self.changed = asyncio.Event()
        self.services = BackendServices(data_dir=Path("."), server_id="test")

    def _on_change(self, record: BackendRecord) -> None:
        self.events.append((record.id, record.status, record.status_reason))
        self.changed.set()

    def add(self, backend_id: int, backend_type: BackendType[Any] = DUMMY, **settings: Any) -> BackendRecord:
        record = self.make(backend_id, backend_type, **settings)
        self.registry.add(record)
        self.lifecycle.schedule_init(record)
        return record

    def make(self, backend_id: int, backend_type: BackendType[Any] = DUMMY, **settings: Any) -> BackendRecord:
        return BackendRecord(id=backend_id, type=backend_type, settings=DummySettings(Address=f"gpu{backend_id}",
                                                                                     **settings),
                               services=self.services, pool=None,  # type: ignore[arg-type]
                             on_change=self._on_change)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait for a condition on the records, woken by each status change (10 s: a hang, not a pace)."""
        async with asyncio.timeout(10):
            while True:
                self.changed.clear()
                if condition():
                    return
                await self.changed.wait()

    def index(self, backend_id: int, status: BackendStatus, reason_start: str = "") -> int:
        return next(n for n, (i, s, r) in enumerate(self.events)
                    if i == backend_id and s is status and r.startswith(reason_start))


def retrying(record: BackendRecord, attempt: int) -> bool:
    return record.status_reason.startswith(f"Load failed, will retry ({attempt}/")


async def test_a_sequential_backend_added_after_a_failing_one_starts_while_that_one_pauses() -> None:
    bench = Bench()
    bench.lifecycle.start()
    try:
        failing = bench.add(1, DUMMY_SEQUENTIAL, Mode="fail")
        await bench.until(lambda: retrying(failing, 1))
        healthy = bench.add(2, DUMMY_SEQUENTIAL)
        await bench.until(lambda: healthy.status is BackendStatus.RUNNING)
        # the healthy one ran while the failing one's pause had not even ended
        assert failing.init_attempts == 1 and len(bench.timer.pending) == 1
        assert 1.0 <= bench.timer.pending[0].delay <= 1.25  # SwarmUI's 1 s, and this backend's share of the spread
        bench.timer.fire()
        await bench.until(lambda: retrying(failing, 2))
        second_failure = bench.index(1, BackendStatus.WAITING, "Load failed, will retry (2/")
        assert bench.index(2, BackendStatus.RUNNING) < second_failure
    finally:
        await bench.lifecycle.shutdown_all()


async def test_a_fast_backends_retry_does_not_wait_for_another_ones_hung_retry() -> None:
    """SwarmUI sends every retry through its one sequential queue: B's retry would wait for A's."""
    bench = Bench()
    bench.lifecycle.start()
    try:
        hangs, fails = bench.add(1, Mode="fail"), bench.add(2, Mode="fail")
        await bench.until(lambda: retrying(hangs, 1) and retrying(fails, 1))
        hangs.settings = dataclasses.replace(hangs.settings, Mode="hang")  # its retry will never end
        assert bench.timer.fire() == 2
        await bench.until(lambda: retrying(fails, 2))
        assert hangs.status is BackendStatus.LOADING and hangs.init_attempts == 2
    finally:
        await bench.lifecycle.shutdown_all()


async def test_retries_keep_swarmuis_attempt_count_and_end_errored_with_the_reason() -> None:
    bench = Bench(max_init_attempts=3)
    bench.lifecycle.start()
    try:
        failing = [bench.add(n, Mode="fail") for n in range(1, 51)]
        healthy = bench.add(51)
        for attempt in (1, 2, 3):
            await bench.until(lambda: all(retrying(record, attempt) for record in failing))  # noqa: B023
            assert all(record.init_attempts == attempt for record in failing)
            assert bench.timer.fire() == 50  # one pause per failing backend, all ended at once
        await bench.until(lambda: all(record.status is BackendStatus.ERRORED for record in failing))
        assert {record.status_reason for record in failing[:1]} == {
            "Dummy backend at gpu1 failed to start (gave up after 4 attempts)"}
        assert {record.init_attempts for record in failing} == {4}
        assert bench.timer.pending == [] and healthy.status is BackendStatus.RUNNING
        assert healthy.init_attempts == 1
    finally:
        await bench.lifecycle.shutdown_all()


def test_backends_that_fail_together_retry_spread_over_a_quarter_of_the_pause() -> None:
    bench = Bench()
    pauses = sorted(bench.lifecycle.retry_pause(bench.make(n)) for n in range(300))
    assert pauses[0] >= 1.0 and pauses[-1] <= 1.25
    assert max(b - a for a, b in itertools.pairwise(pauses)) < 0.25 / 100  # no cluster, no gap


async def test_a_shutdown_during_the_pause_cancels_the_retry() -> None:
    bench = Bench()
    bench.lifecycle.start()
    try:
        failing = bench.add(1, Mode="fail")
        await bench.until(lambda: retrying(failing, 1))
        await bench.lifecycle.hard_shutdown(failing)
        bench.timer.fire()
        assert failing.status is BackendStatus.DISABLED and failing.init_attempts == 1
        failing.settings = dataclasses.replace(failing.settings, Mode="ok")
        bench.lifecycle.schedule_init(failing)
        await bench.until(lambda: failing.status is BackendStatus.RUNNING)
    finally:
        await bench.lifecycle.shutdown_all()
    assert bench.timer.pending == []


async def test_program_shutdown_cancels_the_pending_pauses() -> None:
    bench = Bench()
    bench.lifecycle.start()
    failing = bench.add(1, DUMMY_SEQUENTIAL, Mode="fail")
    await bench.until(lambda: retrying(failing, 1))
    pause = bench.timer.pending[0]
    await bench.lifecycle.shutdown_all()
    assert pause.cancelled
