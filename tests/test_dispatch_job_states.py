"""The job state machine (dispatch/pool/states.py): every transition of the table is allowed, with
a reason, through the one setter (Job.move); every other is refused and changes nothing. Then the
pool in front of a fake ComfyUI: a prompt's life and a deleted one's, as the setter told them."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from pathlib import Path

import pytest

from swarmkeeper.dispatch.needs import PromptNeeds
from swarmkeeper.dispatch.pool.jobs import Job
from swarmkeeper.dispatch.pool.routes import POOL_KEY
from swarmkeeper.dispatch.pool.states import FINISHED, TRANSITIONS, JobState, TransitionError, check_transition
from swarmkeeper.dispatch.requests import Refusal
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.comfy_peer import greeted_events, invert_graph
from tests.pool_support import events_until_done, pool_server

S = JobState
PAIRS = list(itertools.product(JobState, repeat=2))


def new_job() -> Job:
    needs = PromptNeeds(frozenset(), (), None, lambda record: Refusal("unused"))
    return Job("p1", 0, {}, {}, [], needs)


def path_to(state: JobState) -> list[JobState]:
    """The shortest run of allowed transitions from QUEUED to ``state``."""
    paths = {S.QUEUED: [S.QUEUED]}
    todo = deque([S.QUEUED])
    while todo:
        old = todo.popleft()
        for first, new in TRANSITIONS:
            if first is old and new not in paths:
                paths[new] = [*paths[old], new]
                todo.append(new)
    return paths[state]


def job_in(state: JobState) -> Job:
    job = new_job()
    for step in path_to(state)[1:]:
        job.move(step)
    assert job.state is state
    return job


def test_a_job_starts_queued_and_every_state_is_reachable() -> None:
    assert new_job().state is S.QUEUED
    assert {state: path_to(state)[-1] for state in JobState} == {state: state for state in JobState}


def test_every_transition_has_a_one_line_reason() -> None:
    assert TRANSITIONS
    for pair, reason in TRANSITIONS.items():
        assert reason.strip() and "\n" not in reason and check_transition(*pair) == reason


def test_a_finished_job_never_changes_again() -> None:
    assert [pair for pair in TRANSITIONS if pair[0] in FINISHED] == []


def test_a_started_job_never_goes_back_to_the_queue() -> None:
    assert (S.RUNNING, S.QUEUED) not in TRANSITIONS and (S.RUNNING, S.SUBMITTED) not in TRANSITIONS


@pytest.mark.parametrize(("old", "new"), [pair for pair in PAIRS if pair in TRANSITIONS], ids=str)
def test_an_allowed_transition_moves_the_job(old: JobState, new: JobState) -> None:
    job = job_in(old)
    job.move(new)
    assert job.state is new


@pytest.mark.parametrize(("old", "new"), [pair for pair in PAIRS if pair not in TRANSITIONS], ids=str)
def test_any_other_transition_is_refused_and_changes_nothing(old: JobState, new: JobState) -> None:
    job = job_in(old)
    with pytest.raises(TransitionError, match=f"from {old} to {new}"):
        job.move(new)
    assert job.state is old


def test_the_state_has_no_other_writer() -> None:
    job = new_job()
    with pytest.raises(AttributeError):
        job.state = S.RUNNING  # type: ignore[misc]
    assert job.state is S.QUEUED


async def test_the_pool_moves_a_prompt_through_its_life_and_a_deleted_one_out(data_dir: Path) -> None:
    moves: dict[str, list[JobState]] = {}

    def moved(job: Job, state: JobState, reason: str) -> None:
        assert reason == TRANSITIONS[(moves.get(job.prompt_id, [S.QUEUED])[-1], state)]
        moves.setdefault(job.prompt_id, []).append(state)

    async with run_fake_comfyui(job_seconds=2) as fake, pool_server(data_dir, [fake.url], over_queue=0) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "lives") as events:
        pool.services.extra[POOL_KEY].on_move = moved
        first = (await comfy.queue_prompt(invert_graph(0x111111), "lives"))["prompt_id"]
        second = (await comfy.queue_prompt(invert_graph(0x222222), "lives"))["prompt_id"]
        async with asyncio.timeout(30):  # the one backend slot is the first's: the second waits in the pool
            while S.RUNNING not in moves.get(first, []):
                await asyncio.sleep(0.02)
        await comfy.delete_queued([second])
        await events_until_done(events, {first})
        # execution_start often comes before the answer to POST /prompt is read: then no SUBMITTED
        assert moves[first] in ([S.SENDING, S.RUNNING, S.DONE], [S.SENDING, S.SUBMITTED, S.RUNNING, S.DONE])
        assert moves[second] == [S.CANCELLED]
        assert [call.body["prompt_id"] for call in fake.calls_to("/prompt", "POST")] == [first]
