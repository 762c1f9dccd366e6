"""One job's life on backends: wait for a slot, send it, follow it, hand the slot back; send it
elsewhere when a backend refuses it or is lost before it starts.

The runner is given what it uses (the scheduler, the targets, the links) and tells the pool of a
job's end through :class:`JobEnds` alone; the pool drives it through its public methods. Every
state change goes through ``Job.move`` (checked against ``states.py``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.clients.comfyui import SentPrompt
from swarmkeeper.clients.errors import ComfyError, ComfyRequestError
from swarmkeeper.dispatch.pool.jobs import Job, JobState, Outcome
from swarmkeeper.dispatch.pool.links import Link, Links
from swarmkeeper.dispatch.requests import Grant, NoBackend, Request
from swarmkeeper.dispatch.scheduler import Scheduler
from swarmkeeper.dispatch.targets import Targets

log = logging.getLogger("swarmkeeper.dispatch.pool")
TERMINAL_KINDS = {"success": "execution_success", "error": "execution_error", "interrupted": "execution_interrupted"}


def refusal_text(error: ComfyError) -> str:
    if isinstance(error, ComfyRequestError):
        return f"The backend refused the prompt: {error.message}"
    return f"The backend could not be reached: {error.message}"


class JobEnds(Protocol):
    """What the runner tells the pool about a job (the pool implements it)."""

    def fail(self, job: Job, message: str, exception_type: str) -> None:
        """The pool gives up on the job: its clients hear ComfyUI's execution_error."""

    def cancel(self, job: Job) -> None:
        """The job was deleted before it ran: it vanishes."""

    def on_event(self, job: Job, kind: str, data: dict[str, Any], text: str | None = None) -> None:
        """An event of the job, as its backend would have sent it (a reconnect's catch-up)."""


@dataclass(frozen=True)
class Sent:
    """A prompt written to its backend from the scheduler's pass that granted the slot."""

    link: Link
    finished: asyncio.Future[Outcome]
    prompt: SentPrompt


class JobRunner:
    def __init__(self, scheduler: Scheduler, targets: Targets, links: Links, ends: JobEnds) -> None:
        self.scheduler = scheduler
        self.targets = targets
        self.links = links
        self.ends = ends
        #: Backend records whose queued count a job holds (until it starts or ends).
        self._queued_on: dict[str, BackendRecord] = {}
        #: The backend slot each job holds, until the backend says the job ended or the attempt ends.
        self._slots: dict[str, BackendRecord] = {}
        #: Prompts sent at their grant (:meth:`_granted`) whose task has not taken them over yet.
        self._sent: dict[str, Sent] = {}

    def submit(self, job: Job, request: Request) -> asyncio.Future[Grant]:
        """Queue the job's request; whenever it is granted, the prompt is sent in that same pass
        when it can be (:meth:`_granted`), this call's included."""
        request.on_grant = lambda grant: self._granted(job, grant)
        return self.scheduler.submit(request)

    def start(self, job: Job, request: Request, future: asyncio.Future[Grant]) -> asyncio.Task[None]:
        """The job's task: it follows the job from ``future`` (:meth:`submit`'s) to its end."""
        return asyncio.create_task(self._run(job, request, future), name=f"pool-job-{job.prompt_id}")

    def _granted(self, job: Job, grant: Grant) -> None:
        """A slot was granted while the job waited (often as another prompt's end released it):
        the prompt is written to the backend now, in the same pass, when its link is open and a
        connection to it is idle; the job's task then only awaits the answer. Otherwise the task
        sends it, as it sends a job granted when submitted."""
        target = self.targets.of(grant.record)
        link = self.links.ready(target) if target is not None else None
        if target is None or link is None or job.prompt_id in self._sent:
            return
        try:
            prompt = target.client().start_prompt(job.graph, link.client_id, prompt_id=job.prompt_id,
                                                  extra_data=job.extra_data or None, front=job.front)
        except ComfyError:
            return
        except Exception:  # never into the scheduler's pass: the task sends it, and reports what fails
            log.exception("Prompt %s could not be sent at its grant", job.prompt_id)
            return
        if prompt is None:
            return
        self._claimed(job, grant.record, grant.loads_model)
        self._slots[job.prompt_id] = grant.record
        self._sent[job.prompt_id] = Sent(link, self._follow(job, link), prompt)

    def written(self, job: Job) -> bool:
        """Whether the job's prompt was written to its backend at its grant (its task not yet run)."""
        return job.prompt_id in self._sent

    def _follow(self, job: Job, link: Link) -> asyncio.Future[Outcome]:
        """The job's events are taken from the link from now on; the future of its outcome."""
        finished = job.arm()
        link.jobs[job.prompt_id] = job
        job.link_key = link.key
        return finished

    def _withdrawn(self, job: Job, request: Request) -> None:
        """The job's task was cancelled while it waited for its grant (or just after it came)."""
        sent = self._sent.pop(job.prompt_id, None)
        if sent is None:
            self.scheduler.withdraw(request)
            return
        sent.prompt.abandon()
        sent.link.jobs.pop(job.prompt_id, None)
        self.release(job)

    async def _run(self, job: Job, request: Request, future: asyncio.Future[Grant]) -> None:
        last_refusal = ""
        try:
            while True:
                try:
                    grant = await future
                except asyncio.CancelledError:
                    self._withdrawn(job, request)
                    raise
                retry = await self._attempt(job, grant)
                if retry is None:
                    return
                log.info("Prompt %s goes to another backend: %s", job.prompt_id, retry)
                last_refusal = retry
                request.avoid.add(grant.record.id)
                request.front = True
                job.move(JobState.QUEUED)
                future = self.submit(job, request)
        except NoBackend as error:
            message = f"{last_refusal}\n{error.message}" if last_refusal else error.message
            self.ends.fail(job, message, "swarmkeeper.NoBackend")
        except asyncio.CancelledError:
            self.ends.cancel(job)
            raise
        except Exception as error:  # never leave a client waiting for a prompt that will not end
            log.exception("Prompt %s failed in the pool", job.prompt_id)
            self.ends.fail(job, f"Internal error in the pool: {type(error).__name__}", "swarmkeeper.InternalError")

    async def _attempt(self, job: Job, grant: Grant) -> str | None:
        """One try on the granted backend: None when the job ended there, else why to retry."""
        record = grant.record
        sent = self._sent.pop(job.prompt_id, None)
        if sent is None:
            self._claimed(job, record, grant.loads_model)
            self._slots[job.prompt_id] = record
        link: Link | None = None if sent is None else sent.link
        try:
            if sent is not None:
                finished = sent.finished
                await sent.prompt.answer()
            else:
                target = self.targets.of(record)
                if target is None:
                    return f"backend #{record.id} cannot take ComfyUI prompts now"
                link = await self.links.get(target)
                finished = self._follow(job, link)
                await target.client().queue_prompt(job.graph, link.client_id, prompt_id=job.prompt_id,
                                                   extra_data=job.extra_data or None, front=job.front)
            if job.state is JobState.SENDING:
                job.move(JobState.SUBMITTED)
            outcome = await finished
        except (ComfyError, RuntimeError) as error:  # RuntimeError: the backend's client was closed
            error = error if isinstance(error, ComfyError) else ComfyError("The backend is not connected.")
            if link is not None:
                link.jobs.pop(job.prompt_id, None)
            if not job.live:  # its events ended it meanwhile (the answer to POST /prompt was lost)
                return None
            if job.started:
                self.ends.fail(job, f"The backend was lost: {error.message}", "swarmkeeper.BackendLost")
                return None
            return refusal_text(error)
        finally:
            self.release(job)
        return self._conclude(job, record, outcome)

    def _conclude(self, job: Job, record: BackendRecord, outcome: Outcome) -> str | None:
        if outcome.kind == "lost":
            if not outcome.started:
                return f"backend #{record.id} was lost before the prompt started ({outcome.message})"
            self.ends.fail(job, f"The backend running this prompt was lost: {outcome.message}",
                           "swarmkeeper.BackendLost")
        elif outcome.kind == "cancelled":
            self.ends.cancel(job)
        elif outcome.kind == "success" and job.needs.model and record.backend.can_load_models:
            record.backend.current_model = job.needs.model
        return None

    # --- per-backend counts ---

    def _claimed(self, job: Job, record: BackendRecord, loads_model: bool) -> None:
        job.move(JobState.SENDING)
        job.backend_id = record.id
        job.loads_model = loads_model
        record.jobs_queued += 1
        self._queued_on[job.prompt_id] = record

    def started(self, job: Job) -> None:
        job.move(JobState.RUNNING)
        self._unclaimed(job)

    def release(self, job: Job) -> None:
        """Hand the job's backend slot back, once. The pool calls it as soon as the backend says the
        job ended, before that event is relayed and the queue count broadcast, so the next waiting
        job is sent there first."""
        record = self._slots.pop(job.prompt_id, None)
        if record is not None:
            self._unclaimed(job)
            self.scheduler.release(record)

    def _unclaimed(self, job: Job) -> None:
        record = self._queued_on.pop(job.prompt_id, None)
        if record is not None:
            record.jobs_queued -= 1

    # --- what clients ask of a job ---

    def detach(self, job: Job) -> None:
        """The job's last event went out: its link forgets it."""
        link = self.links.by_key(job.link_key)
        if link is not None:
            link.jobs.pop(job.prompt_id, None)

    async def catch_up(self, link: Link) -> None:
        """After a reconnect: prompts that ended while the socket was down end here too (the new
        socket's events are relayed meanwhile: a prompt they ended is left alone)."""
        for job in list(link.jobs.values()):
            try:
                history = await link.target.client().history(job.prompt_id)
            except ComfyError:
                continue
            if link.jobs.get(job.prompt_id) is not job or not job.live:
                continue
            entry = history.get(job.prompt_id)
            status = entry.get("status") if isinstance(entry, dict) else None
            if not isinstance(status, dict):
                continue
            messages = [m for m in status.get("messages") or [] if isinstance(m, list) and len(m) == 2]
            last = next((m for m in reversed(messages) if m[0] in TERMINAL_KINDS.values()), None)
            kind, data = (last[0], last[1]) if last else ("execution_success", {"prompt_id": job.prompt_id})
            self.ends.on_event(job, kind, {**data, "prompt_id": job.prompt_id})
            self.ends.on_event(job, "executing", {"node": None, "prompt_id": job.prompt_id})

    async def withdraw(self, job: Job) -> None:
        """Take a job that has not started out of the queue (the pool's, or its backend's)."""
        if job.state is JobState.QUEUED:
            if job.task is not None:
                job.task.cancel()
            return
        link = self.links.by_key(job.link_key)
        if link is None:
            return
        try:
            client = link.target.client()
            await client.delete_queued([job.prompt_id])
            queue = await client.get_queue()
        except ComfyError as error:
            log.warning("Could not delete prompt %s from backend %s: %s", job.prompt_id, link.key, error.message)
            return
        held = [item[1] for key in ("queue_running", "queue_pending") for item in queue.get(key) or []
                if isinstance(item, list) and len(item) > 1]
        if job.prompt_id not in held and not job.started:
            link.jobs.pop(job.prompt_id, None)
            job.settle(Outcome("cancelled"))

    async def interrupt(self, job: Job) -> None:
        link = self.links.by_key(job.link_key)
        if link is None:
            return
        try:
            await link.target.client().interrupt(job.prompt_id)
        except ComfyError as error:
            log.warning("Could not interrupt prompt %s on %s: %s", job.prompt_id, link.key, error.message)
