"""The pool: prompts in, a backend for each, its events out to the client that sent it.

A prompt is validated, given its ``prompt_id`` and answered at once; its job then waits in the
scheduler for a backend slot, is sent there under the backend link's client id, and is followed
through the link's events until the backend says it is done, when the slot is handed back.

- The backend refuses it (its own validation) or cannot be reached before it starts: it is sent
  to another backend; if none is left, it fails.
- The backend is lost while it runs: it fails with ComfyUI's ``execution_error`` event.
- Lost before it started (it waited in the backend's queue): it runs elsewhere, once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.clients.comfyui import BinaryEvent, parse_text_event
from swarmkeeper.dispatch.needs import LateNeeds, needs_of
from swarmkeeper.dispatch.pool.files import FileMap
from swarmkeeper.dispatch.pool.jobs import Job, JobState, Outcome
from swarmkeeper.dispatch.pool.links import Link, Links
from swarmkeeper.dispatch.pool.relay import Relay
from swarmkeeper.dispatch.pool.running import JobRunner
from swarmkeeper.dispatch.pool.validate import error_body, shape, validate
from swarmkeeper.dispatch.requests import Request
from swarmkeeper.dispatch.scheduler import Scheduler
from swarmkeeper.dispatch.targets import Targets
from swarmkeeper.types import BackendId

log = logging.getLogger("swarmkeeper.dispatch.pool")
JSONObject = dict[str, Any]
TERMINAL = {"execution_success": "success", "execution_error": "error", "execution_interrupted": "interrupted"}
#: Finished prompts kept for /history (ComfyUI's MAXIMUM_HISTORY_SIZE).
MAX_HISTORY = 10_000
SERVER_FEATURES: JSONObject = {"supports_preview_metadata": True, "max_upload_size": 104857600}


def now_ms() -> int:
    return int(time.time() * 1000)


class Pool:
    def __init__(self, registry: BackendRegistry, scheduler: Scheduler, targets: Targets, *,
                 max_history: int = MAX_HISTORY) -> None:
        self.registry = registry
        self.scheduler = scheduler
        self.targets = targets
        self.relay = Relay(SERVER_FEATURES)
        self.links = Links(self)
        self.files = FileMap()
        self.runner = JobRunner(scheduler, targets, self.links, self)
        self.jobs: dict[str, Job] = {}
        self.max_history = max_history
        self._next_number = 0
        #: Prompts accepted and not finished (ComfyUI's queue_remaining, pool-wide).
        self.remaining = 0
        #: Called with (job, outcome kind) when a job ends (metrics).
        self.on_finished: Callable[[Job, str], None] | None = None
        #: Called with (job, new state, the transition's reason) on every state change of a job
        #: accepted from now on.
        self.on_move: Callable[[Job, JobState, str], None] | None = None
        #: Where files are decoded to check them (media.py): threads of the pool's own, so a busy
        #: default executor never holds up a /view or an upload.
        self.decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool-decoder")

    # --- accepting prompts ---

    def union_info(self) -> Any:
        return self.targets.union(self.registry.all())

    def accept(self, body: Any, *, pin: BackendId | None = None, session: str | None = None,
               sink: Callable[[Job, Any], None] | None = None) -> tuple[int, JSONObject]:
        """``POST /prompt``: (HTTP status, answer). A prompt that no backend can run is refused at
        once, with the scheduler's reasons, and nothing is queued. Before any backend's node list is
        known, a prompt some backend may yet run (one loading, an autoscaling one that can start a
        worker) is queued unvalidated, and validated once one is (LateNeeds)."""
        info = self.union_info()
        verdict = validate(body, info) if info else shape(body)
        if verdict.error is not None:
            return 400, verdict.body
        graph = body["prompt"]
        needs = needs_of(graph, info, self.targets.info_of) if info else \
            LateNeeds(frozenset(), (), None, self.targets.info_of, body=body, union=self.union_info,
                      outputs=verdict.outputs)
        prompt_id = self._prompt_id(body.get("prompt_id"))
        client_id = body.get("client_id") if isinstance(body.get("client_id"), str) else None
        front = body.get("front") is True
        request = Request(check=needs, model=needs.model, session=session, pin=pin, front=front)
        number = self._next_number
        extra = dict(body.get("extra_data") or {}) if isinstance(body.get("extra_data"), dict) else {}
        job = Job(prompt_id, -number if front else number, graph, extra, verdict.outputs, needs, client_id=client_id,
                  front=front, session=session, pin=pin, sink=sink, on_move=self.on_move)
        future = self.runner.submit(job, request)  # granted at once: written to the backend before the answer
        if future.done() and future.exception() is not None:
            message = str(getattr(future.exception(), "message", future.exception()))
            return 400, error_body("no_backends", message.split(" Backends refused")[0], message)
        self._next_number += 1
        job.task = self.runner.start(job, request, future)
        self._register(job)
        return 200, {"prompt_id": prompt_id, "number": job.number, "node_errors": verdict.node_errors}

    def written(self, prompt_id: str) -> bool:
        """Whether the prompt is already on its way to a backend (sent from ``accept``'s grant)."""
        job = self.jobs.get(prompt_id)
        return job is not None and self.runner.written(job)

    def _prompt_id(self, wanted: Any) -> str:
        if isinstance(wanted, str) and wanted and len(wanted) <= 200 and wanted not in self.jobs:
            return wanted
        return str(uuid.uuid4())

    def _register(self, job: Job) -> None:
        self.jobs[job.prompt_id] = job
        self.remaining += 1
        self.relay.status(self.remaining)
        self._trim_history()

    def _trim_history(self) -> None:
        finished = len(self.jobs) - self.remaining
        if finished <= self.max_history:
            return
        for prompt_id in [p for p, j in self.jobs.items() if not j.live][: finished - self.max_history]:
            del self.jobs[prompt_id]

    # --- ends of a job (JobEnds, for the runner) ---

    def finish(self, job: Job, state: JobState, kind: str) -> None:
        """The job ended (once): the queue count drops and every client hears it."""
        if not job.live:
            return
        job.move(state)
        self.remaining -= 1
        self.relay.status(self.remaining)
        if self.on_finished is not None:
            self.on_finished(job, kind)

    def fail(self, job: Job, message: str, exception_type: str) -> None:
        """The pool gives up on a job: ComfyUI's execution_error, then the done marker."""
        if not job.live:
            return
        node = (job.last_executing or {}).get("node")
        node_type = job.graph.get(node, {}).get("class_type") if node else None
        data: JSONObject = {"prompt_id": job.prompt_id, "node_id": node, "node_type": node_type, "executed": [],
                            "exception_message": message, "exception_type": exception_type, "traceback": [],
                            "current_inputs": {}, "current_outputs": [], "timestamp": now_ms()}
        status = {"status_str": "error", "completed": False, "messages": [["execution_error", data]]}
        job.history = {"prompt": job.item, "outputs": {}, "status": status, "meta": {}}
        log.warning("Prompt %s failed: %s", job.prompt_id, message)
        self.deliver(job, "execution_error", data)
        self.finish(job, JobState.FAILED, "failed")
        self.deliver(job, "executing", {"node": None, "prompt_id": job.prompt_id})

    def cancel(self, job: Job) -> None:
        """Deleted from the queue before it ran: it vanishes, as in ComfyUI."""
        if job.live:
            self.finish(job, JobState.CANCELLED, "cancelled")
            if job.sink is not None:
                job.sink(job, {"type": "swarmkeeper_cancelled", "data": {"prompt_id": job.prompt_id}})
        self.jobs.pop(job.prompt_id, None)

    # --- events from backends (LinkOwner) ---

    def on_event(self, job: Job, kind: str, data: dict[str, Any], text: str | None = None) -> None:
        """An event of the job from its backend; ``text``, its frame as it came, is passed on
        unless the pool changes the event."""
        if kind in TERMINAL:
            self.runner.release(job)
        if kind == "execution_start" and job.state in (JobState.SENDING, JobState.SUBMITTED):
            self.runner.started(job)
            self.relay.status(self.remaining)  # ComfyUI's status as it takes the prompt
        elif kind == "executing":
            job.last_executing = data if data.get("node") is not None else None
        elif kind == "executed" and isinstance(data.get("output"), dict) and job.backend_id is not None:
            output = self.files.rewrite(data["output"], job.backend_id)
            if output != data["output"]:
                data, text = {**data, "output": output}, None
        self.deliver(job, kind, data, text)
        if kind in TERMINAL:
            self.finish(job, JobState.DONE, TERMINAL[kind])
            job.settle(Outcome(TERMINAL[kind], started=True))
        elif kind == "executing" and data.get("node") is None:
            self.relay.flush(job.client_id)
            self.runner.detach(job)

    def on_progress(self, job: Job, kind: str, text: str) -> None:
        """A ``progress_state`` or ``progress`` of the job, passed on as it came (read only for a sink)."""
        self.deliver(job, kind, None, text)

    def on_binary(self, job: Job, event: BinaryEvent, frame: bytes) -> None:
        if job.sink is not None:
            job.sink(job, frame)
        if job.client_id is not None:
            self.relay.send_binary(job.client_id, event, frame)

    def deliver(self, job: Job, kind: str, data: dict[str, Any] | None, text: str | None = None) -> None:
        """ComfyUI's routing: a prompt's events to its client only; ``execution_interrupted`` to
        everyone; a prompt without client_id shows only its ``progress_state`` (to everyone).
        ``data`` may be left out (None) when ``text`` carries the event."""
        if job.sink is not None:
            if data is None:
                assert text is not None
                data = parse_text_event(text)["data"]
            job.sink(job, {"type": kind, "data": data})
        if kind == "execution_interrupted" or (job.client_id is None and kind == "progress_state"):
            self.relay.send(None, kind, data, text)
        elif job.client_id is not None:
            self.relay.send(job.client_id, kind, data, text)

    async def on_lost(self, link: Link, reason: str, reconnected: bool) -> None:
        if reconnected:
            await self.runner.catch_up(link)
            return
        self.links.forget(link)
        log.warning("Lost backend #%s (%s): %s prompts affected", link.target.record.id, reason, len(link.jobs))
        for job in list(link.jobs.values()):
            job.settle(Outcome("lost", started=job.started, message=reason))
        link.jobs.clear()

    # --- what clients see ---

    def executing_for(self, sid: str) -> JSONObject | None:
        """The current ``executing`` of a running prompt of this client (re-sent on reconnect)."""
        for job in self.jobs.values():
            if job.client_id == sid and job.state is JobState.RUNNING and job.last_executing is not None:
                return job.last_executing
        return None

    def queue_view(self) -> JSONObject:
        live = sorted((job for job in self.jobs.values() if job.live), key=lambda job: job.number)
        running = [job.item for job in live if job.state is JobState.RUNNING]
        return {"queue_running": running, "queue_pending": [job.item for job in live if job.state is not
                                                            JobState.RUNNING]}

    async def delete_queued(self, ids: list[str]) -> None:
        """``POST /queue {"delete"}``: pending prompts only (a running one carries on)."""
        for prompt_id in ids:
            job = self.jobs.get(prompt_id)
            if job is not None and job.live and job.state is not JobState.RUNNING:
                await self.runner.withdraw(job)

    async def interrupt(self, prompt_id: str | None) -> None:
        """``POST /interrupt``: the prompt (or, without one, every running pool prompt) stops at its
        next node on its backend."""
        jobs = [job for job in self.jobs.values() if job.state is JobState.RUNNING
                and (prompt_id is None or job.prompt_id == prompt_id)]
        for job in jobs:
            await self.runner.interrupt(job)

    def backend_record(self, backend_id: BackendId | None) -> BackendRecord | None:
        return self.registry.get(backend_id) if backend_id is not None else None

    async def close(self) -> None:
        self.scheduler.cancel_all("The server is shutting down.")
        for job in list(self.jobs.values()):
            if job.task is not None and not job.task.done():
                job.task.cancel()
        await self.links.close()
        for client in list(self.relay.clients.values()):
            client.close()
        self.decoder.shutdown(wait=False, cancel_futures=True)
