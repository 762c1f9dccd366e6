"""A prompt sent to a free backend while its POST /prompt is handled, before the answer; and a
backend slot handed straight to the next waiting prompt: when a backend says a prompt ended,
the next prompt waiting for it is written to the backend in the same pass (before that end is even
relayed), not by its task in a later turn of the event loop. (Before the link to a backend is open,
the first prompt there is sent by its task, which opens it.)"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.dispatch.pool.jobs import Job
from swarmkeeper.dispatch.pool.states import JobState
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.comfy_peer import greeted_events, invert_graph
from tests.pool_support import events_until_done, pool_server, terminal_events

S = JobState


async def test_the_next_waiting_prompt_is_sent_as_the_last_one_ends(data_dir: Path) -> None:
    moves: list[tuple[str, JobState]] = []
    sent_while_accepted: list[str] = []

    def moved(job: Job, state: JobState, reason: str) -> None:
        moves.append((job.prompt_id, state))
        if state is S.SENDING and job.prompt_id not in pool.services.dispatch.pool.jobs:
            sent_while_accepted.append(job.prompt_id)

    async with run_fake_comfyui(job_seconds=0.3) as fake, pool_server(data_dir, [fake.url], over_queue=0) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "handoff") as events:
        warm = (await comfy.queue_prompt(invert_graph(0x0F0F0F), "handoff"))["prompt_id"]  # opens the link
        await events_until_done(events, {warm})
        pool.services.dispatch.pool.on_move = moved
        ids = [(await comfy.queue_prompt(invert_graph(0x101010 * n), "handoff"))["prompt_id"] for n in (1, 2, 3)]
        seen = events_until_done(events, set(ids))
        assert terminal_events(await seen) == {prompt_id: ["execution_success"] for prompt_id in ids}
    assert sent_while_accepted == ids[:1]  # the free backend got the first before its POST was answered
    sent = [call.body["prompt_id"] for call in fake.calls_to("/prompt", "POST")]
    assert sent == [warm, *ids]  # each once, in order
    for before, after in itertools.pairwise(ids):
        # the one slot passes on inside the handling of the end: SENDING before the end is recorded
        assert moves.index((after, S.SENDING)) < moves.index((before, S.DONE))
        assert (after, S.RUNNING) in moves and (after, S.DONE) in moves


async def test_a_send_at_the_grant_that_fails_leaves_the_prompt_to_its_task(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug in the early send")

    monkeypatch.setattr(ComfyClient, "start_prompt", broken)
    async with run_fake_comfyui(job_seconds=0.05) as fake, pool_server(data_dir, [fake.url], over_queue=0) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "fallback") as events:
        ids = [(await comfy.queue_prompt(invert_graph(0x030303 * n), "fallback"))["prompt_id"] for n in (1, 2, 3)]
        assert terminal_events(await events_until_done(events, set(ids))) == \
            {prompt_id: ["execution_success"] for prompt_id in ids}
    assert [call.body["prompt_id"] for call in fake.calls_to("/prompt", "POST")] == ids
    assert "could not be sent at its grant" in caplog.text  # the early send was tried, and failed


async def test_a_job_cancelled_just_after_its_send_at_the_grant_hands_its_slot_back(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.2) as fake, pool_server(data_dir, [fake.url], over_queue=0) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "cancel") as events:
        dispatch_pool = pool.services.dispatch.pool
        warm = (await comfy.queue_prompt(invert_graph(0x0F0F0F), "cancel"))["prompt_id"]  # opens the link
        await events_until_done(events, {warm})
        cancelled: list[str] = []

        def moved(job: Job, state: JobState, reason: str) -> None:
            if job.number == 2 and state is S.SENDING:  # the third prompt of this pool: ``second``
                assert job.task is not None
                job.task.cancel()  # before the task has taken over the prompt sent at its grant
                cancelled.append(job.prompt_id)

        dispatch_pool.on_move = moved  # a job takes the hook when accepted
        first = (await comfy.queue_prompt(invert_graph(0x111111), "cancel"))["prompt_id"]
        second = (await comfy.queue_prompt(invert_graph(0x222222), "cancel"))["prompt_id"]
        await events_until_done(events, {first})
        third = (await comfy.queue_prompt(invert_graph(0x333333), "cancel"))["prompt_id"]
        assert terminal_events(await events_until_done(events, {third})) == {third: ["execution_success"]}
        assert cancelled == [second] and second not in dispatch_pool.jobs
        record = pool.services.registry.get(pool.backend_ids[0])
        assert record is not None and record.usages == 0 and record.jobs_queued == 0
    assert [call.body["prompt_id"] for call in fake.calls_to("/prompt", "POST")] == [warm, first, second, third]
