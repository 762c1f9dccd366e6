"""Adopting a process an earlier server left, and leaving one for a later server, in the
supervisor's state machine (fake process, injected clock): an adopted process that answers is
watched and relaunched after a crash like any other; one that does not answer, or exits, is
stopped; a detached process is never signalled, not even by a later stop."""

from __future__ import annotations

import signal

from swarmkeeper.process.policy import RestartPolicy
from swarmkeeper.process.states import ProcessState
from swarmkeeper.process.supervisor import Adoption, describe_exit
from tests.process_fakes import FakeProcess
from tests.test_supervisor import Rig, make, settle, started, until

S = ProcessState


class LeftRunning(FakeProcess):
    """A process an earlier server started: its exit code is never known."""

    async def wait(self) -> None:  # type: ignore[override]
        await super().wait()


def left_running(rig: Rig) -> LeftRunning:
    return LeftRunning(rig.launcher.prepare(), lambda stream, line: None, dies_on=(signal.SIGINT,))


async def test_an_adopted_process_that_answers_runs_and_is_relaunched_after_a_crash() -> None:
    rig = make(RestartPolicy(restart_delay=2.0))
    rig.launcher.ready.set()
    old = left_running(rig)
    assert await rig.supervisor.adopt(old) is Adoption.ADOPTED
    assert rig.states.states == [S.ADOPTING, S.RUNNING] and rig.supervisor.process is old
    assert rig.spawner.spawned == []  # nothing was launched
    old.exit(1)  # it dies later; its code is unknown, the policy relaunches it as any crash
    await settle(rig.supervisor, S.RUNNING)
    await until(lambda: len(rig.spawner.spawned) == 1 and rig.supervisor.state is S.RUNNING)
    backoff = next(reason for state, reason in rig.states.changes if state is S.BACKOFF)
    assert backoff.startswith("ComfyUI-0 exited unexpectedly") and describe_exit(None) == "exited"
    assert rig.states.states == [S.ADOPTING, S.RUNNING, S.BACKOFF, S.STARTING, S.RUNNING]


async def test_an_adopted_process_that_does_not_answer_is_stopped() -> None:
    rig = make(RestartPolicy(adopt_wait=30.0))  # never ready: the injected clock runs the wait out
    old = left_running(rig)
    assert await rig.supervisor.adopt(old) is Adoption.SILENT
    assert rig.states.states == [S.ADOPTING, S.STOPPING, S.STOPPED] and rig.clock.waits[0] == 30.0
    assert old.signals == ["SIGINT", "KILL_TREE"] and rig.supervisor.process is None
    rig.launcher.ready.set()
    await rig.supervisor.start()  # ready for a launch of its own
    assert rig.supervisor.state is S.RUNNING and len(rig.spawner.spawned) == 1


async def test_an_adopted_process_that_exits_while_probed_is_cleaned_up() -> None:
    rig = make()
    old = left_running(rig)
    old.exit(0)
    assert await rig.supervisor.adopt(old) is Adoption.EXITED
    assert rig.states.states == [S.ADOPTING, S.STOPPING, S.STOPPED] and old.signals == ["KILL_TREE"]


async def test_a_detached_process_is_left_alone_even_by_a_later_stop() -> None:
    rig = await started()
    process = rig.first
    assert await rig.supervisor.detach() is True
    assert rig.supervisor.state is S.DETACHED and rig.supervisor.process is None
    await rig.supervisor.stop()
    assert rig.states.states[-3:] == [S.DETACHED, S.STOPPING, S.STOPPED]
    assert process.signals == ["RELEASED"] and process.returncode is None


async def test_there_is_nothing_to_detach_once_it_died() -> None:
    rig = await started(RestartPolicy(auto_restart=False))
    rig.first.exit(1)
    await settle(rig.supervisor, S.FATAL)
    assert await rig.supervisor.detach() is False and rig.supervisor.state is S.FATAL
