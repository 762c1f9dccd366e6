"""The process supervisor's state machine, with a fake process and an injected clock: readiness,
a failed first launch, crashes with and without AutoRestart, and the stop sequence."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from swarmkeeper.backends.process_status import public_status
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.process.launch import LaunchError
from swarmkeeper.process.policy import ExitDecision, RestartPolicy, decide
from swarmkeeper.process.states import TRANSITIONS, ProcessState, TransitionError, check_transition
from swarmkeeper.process.supervisor import ProcessFailed, Supervisor, describe_exit, exit_reason
from tests.process_fakes import FakeClock, FakeLauncher, FakeProcess, FakeSpawner, StateLog

S = ProcessState


@dataclass
class Rig:
    """A supervisor with its fake launcher, spawner, clock and state log."""

    supervisor: Supervisor
    launcher: FakeLauncher
    spawner: FakeSpawner
    clock: FakeClock
    states: StateLog

    @property
    def first(self) -> FakeProcess:
        return self.spawner.spawned[0]


def make(policy: RestartPolicy | None = None, dies_on: tuple[signal.Signals, ...] = (signal.SIGINT,)) -> Rig:
    launcher, spawner, clock, states = FakeLauncher(), FakeSpawner(dies_on=dies_on), FakeClock(), StateLog()
    supervisor = Supervisor("ComfyUI-0", launcher, on_state=states, policy=policy, spawn=spawner, clock=clock)
    return Rig(supervisor, launcher, spawner, clock, states)


async def started(policy: RestartPolicy | None = None, dies_on: tuple[signal.Signals, ...] = (signal.SIGINT,)) -> Rig:
    rig = make(policy, dies_on)
    rig.launcher.ready.set()
    await rig.supervisor.start()
    return rig


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def settle(supervisor: Supervisor, *states: ProcessState) -> None:
    await until(lambda: supervisor.state in states)


# --- the table, the mapping and the decision ---


def test_every_state_maps_to_a_swarmui_status() -> None:
    assert {state: public_status(state) for state in ProcessState} == {
        S.STOPPED: BackendStatus.DISABLED, S.STARTING: BackendStatus.LOADING, S.RUNNING: BackendStatus.RUNNING,
        S.BACKOFF: BackendStatus.LOADING, S.STOPPING: BackendStatus.DISABLED, S.FATAL: BackendStatus.ERRORED,
        S.ADOPTING: BackendStatus.LOADING, S.DETACHED: BackendStatus.DISABLED,
    }


def test_every_transition_has_a_reason_and_others_are_refused() -> None:
    assert all(reason for reason in TRANSITIONS.values())
    assert check_transition(S.STARTING, S.RUNNING) == "the readiness probe succeeded"
    with pytest.raises(TransitionError, match="from stopped to running"):
        check_transition(S.STOPPED, S.RUNNING)
    with pytest.raises(TransitionError):
        check_transition(S.STOPPING, S.RUNNING)


@pytest.mark.parametrize(("auto", "stopping", "ready", "expected"), [
    (True, True, True, ExitDecision.EXPECTED),
    (False, True, False, ExitDecision.EXPECTED),
    (True, False, True, ExitDecision.RESTART),
    (True, False, False, ExitDecision.FAIL),
    (False, False, True, ExitDecision.FAIL),
])
def test_exit_decision(auto: bool, stopping: bool, ready: bool, expected: ExitDecision) -> None:
    assert decide(RestartPolicy(auto_restart=auto), stopping=stopping, was_ready=ready) is expected


def test_exit_reasons_quote_the_last_lines() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-9) == "was killed by SIGKILL"
    lines = [f"line {n}" for n in range(10)] + ["OSError: [Errno 98] address already in use"]
    reason = exit_reason("ComfyUI-2", 1, lines, ready=False)
    assert reason.startswith("ComfyUI-2 exited with code 1 before it was ready: line 5 | line 6")
    assert reason.endswith("OSError: [Errno 98] address already in use")
    expected = "ComfyUI-2 exited with code 0 unexpectedly (it wrote nothing)."
    assert exit_reason("ComfyUI-2", 0, [], ready=True) == expected


# --- starting ---


async def test_start_probes_until_ready_then_runs() -> None:
    rig = make()
    supervisor = rig.supervisor
    starting = asyncio.create_task(supervisor.start())
    await settle(supervisor, S.STARTING)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not starting.done() and rig.launcher.probes > 1
    rig.launcher.ready.set()
    await starting
    assert rig.states.states == [S.STARTING, S.RUNNING]
    assert "is starting at http://127.0.0.1:7821 (pid" in rig.states.changes[0][1]
    assert supervisor.process is rig.first and supervisor.launches == 1


async def test_exit_before_ready_is_fatal_with_the_stderr_tail_and_not_relaunched() -> None:
    rig = make()
    supervisor = rig.supervisor
    starting = asyncio.create_task(supervisor.start())
    await settle(supervisor, S.STARTING)
    process = rig.first
    process.write("Traceback (most recent call last):")
    process.write("ModuleNotFoundError: No module named 'torch'")
    process.exit(1)
    with pytest.raises(ProcessFailed) as failed:
        await starting
    assert failed.value.reason == ("ComfyUI-0 exited with code 1 before it was ready: Traceback (most recent call "
                                   "last): | ModuleNotFoundError: No module named 'torch'")
    assert rig.states.states == [S.STARTING, S.FATAL] and rig.states.changes[-1][1] == failed.value.reason
    assert len(rig.spawner.spawned) == 1 and "KILL_TREE" in process.signals


async def test_a_spawn_that_cannot_work_raises_and_changes_nothing() -> None:
    rig = make()
    supervisor = rig.supervisor
    rig.spawner.fail_with = "ComfyUI-0 could not be started: Permission denied"
    with pytest.raises(LaunchError, match="Permission denied"):
        await supervisor.start()
    assert supervisor.state is S.STOPPED and rig.states.changes == []


# --- crashes ---


async def test_crash_after_ready_relaunches_on_a_new_port_after_the_delay() -> None:
    rig = await started()
    supervisor = rig.supervisor
    rig.first.exit(-signal.SIGKILL)
    await settle(supervisor, S.BACKOFF)
    assert "was killed by SIGKILL unexpectedly" in supervisor.reason and "Restarting in 2 s" in supervisor.reason
    await settle(supervisor, S.RUNNING)
    assert rig.clock.sleeps == [2.0]
    assert [spec.where for spec in rig.launcher.prepared] == ["http://127.0.0.1:7821", "http://127.0.0.1:7822"]
    assert rig.states.states == [S.STARTING, S.RUNNING, S.BACKOFF, S.STARTING, S.RUNNING]
    assert supervisor.process is rig.spawner.spawned[1] and supervisor.launches == 2


async def test_crash_without_auto_restart_is_fatal() -> None:
    rig = await started(RestartPolicy(auto_restart=False))
    supervisor = rig.supervisor
    rig.first.write("Segmentation fault")
    rig.first.exit(-signal.SIGSEGV)
    await settle(supervisor, S.FATAL)
    assert supervisor.reason == "ComfyUI-0 was killed by SIGSEGV unexpectedly: Segmentation fault"
    assert len(rig.spawner.spawned) == 1 and rig.clock.sleeps == []


async def test_a_relaunch_that_dies_before_ready_is_fatal_and_not_retried_again() -> None:
    rig = await started()
    supervisor = rig.supervisor
    rig.launcher.ready.clear()
    rig.first.exit(1)
    await settle(supervisor, S.STARTING)
    await until(lambda: len(rig.spawner.spawned) == 2)
    rig.spawner.spawned[1].write("CUDA error: out of memory")
    rig.spawner.spawned[1].exit(1)
    await settle(supervisor, S.FATAL)
    assert supervisor.reason == "ComfyUI-0 exited with code 1 before it was ready: CUDA error: out of memory"
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(rig.spawner.spawned) == 2


async def test_a_relaunch_that_cannot_be_spawned_is_fatal() -> None:
    rig = await started()
    supervisor = rig.supervisor
    rig.spawner.fail_with = "ComfyUI-0 could not be started: No such file or directory"
    rig.first.exit(1)
    await settle(supervisor, S.FATAL)
    assert supervisor.reason == "ComfyUI-0 could not be started: No such file or directory"


# --- stopping ---


async def test_stop_sends_sigint_and_waits_no_further_when_it_obeys() -> None:
    rig = await started(dies_on=(signal.SIGINT,))
    supervisor = rig.supervisor
    await supervisor.stop()
    assert rig.first.signals == ["SIGINT", "KILL_TREE"]
    assert rig.states.states[-2:] == [S.STOPPING, S.STOPPED] and supervisor.process is None


async def test_stop_escalates_sigint_10s_sigterm_10s_then_kills_the_tree() -> None:
    rig = await started(dies_on=())
    supervisor = rig.supervisor
    rig.clock.waits.clear()
    await supervisor.stop()
    assert rig.first.signals == ["SIGINT", "SIGTERM", "KILL_TREE"]
    assert rig.clock.waits == [10.0, 10.0]
    assert supervisor.state is S.STOPPED


async def test_stop_uses_sigterm_when_sigint_is_ignored() -> None:
    rig = await started(dies_on=(signal.SIGTERM,))
    supervisor = rig.supervisor
    rig.clock.waits.clear()
    await supervisor.stop()
    assert rig.first.signals == ["SIGINT", "SIGTERM", "KILL_TREE"] and rig.clock.waits == [10.0]


async def test_kill_kills_the_tree_without_asking() -> None:
    rig = await started(dies_on=(signal.SIGINT,))
    supervisor = rig.supervisor
    await supervisor.kill()
    assert rig.first.signals == ["KILL_TREE"]
    assert supervisor.state is S.STOPPED


async def test_kill_cuts_a_slow_stop_short() -> None:
    rig = await started(dies_on=())
    supervisor = rig.supervisor
    slow = RealWaitClock()
    supervisor.clock = slow
    stopping = asyncio.create_task(supervisor.stop())
    await settle(supervisor, S.STOPPING)
    await until(lambda: bool(rig.first.signals))
    await supervisor.kill()
    await stopping
    assert rig.first.signals[:2] == ["SIGINT", "KILL_TREE"] and supervisor.state is S.STOPPED


async def test_stop_while_starting_and_stop_twice() -> None:
    rig = make()
    supervisor = rig.supervisor
    starting = asyncio.create_task(supervisor.start())
    await settle(supervisor, S.STARTING)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    await supervisor.stop()
    await supervisor.stop()
    assert rig.first.signals == ["SIGINT", "KILL_TREE"]
    assert rig.states.states == [S.STARTING, S.STOPPING, S.STOPPED]


async def test_stop_during_the_restart_delay_stops_for_good() -> None:
    rig = await started()
    supervisor = rig.supervisor
    supervisor.clock = RealWaitClock()
    rig.first.exit(-signal.SIGKILL)
    await settle(supervisor, S.BACKOFF)
    await supervisor.stop()
    for _ in range(20):
        await asyncio.sleep(0)
    assert supervisor.state is S.STOPPED and len(rig.spawner.spawned) == 1


async def test_after_a_fatal_exit_start_launches_again() -> None:
    rig = await started(RestartPolicy(auto_restart=False))
    supervisor = rig.supervisor
    rig.first.exit(1)
    await settle(supervisor, S.FATAL)
    await supervisor.start()
    assert supervisor.state is S.RUNNING and len(rig.spawner.spawned) == 2


class RealWaitClock(FakeClock):
    """Waits really wait (bounded by the test), so another task can act in the meantime."""

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(3600)

    async def within(self, awaitable: object, seconds: float) -> bool:
        try:
            async with asyncio.timeout(5):
                await awaitable  # type: ignore[misc]
        except TimeoutError:
            return False
        return True
