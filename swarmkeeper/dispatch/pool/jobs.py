"""A prompt in the pool: from ``POST /prompt`` to its last event, whichever backend runs it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swarmkeeper.dispatch.needs import PromptNeeds
from swarmkeeper.dispatch.pool.states import ACTIVE, FINISHED, JobState, check_transition
from swarmkeeper.types import BackendId

__all__ = ["ACTIVE", "FINISHED", "Job", "JobState", "Outcome"]
JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """How a job on a backend ended, as the link saw it."""

    #: success | error | interrupted (the backend's words), or lost (the backend went away).
    kind: str
    started: bool = False
    message: str = ""


@dataclass(eq=False)
class Job:
    prompt_id: str
    number: float
    graph: JSONObject
    #: extra_data as the client sent it (the queue and history items add its client_id, as ComfyUI's do).
    extra_data: JSONObject
    #: Output node ids to run (after partial_execution_targets).
    outputs: list[str]
    needs: PromptNeeds
    client_id: str | None = None
    front: bool = False
    session: str | None = None
    pin: BackendId | None = None
    #: For jobs the server makes itself (GenerateText2Image): receives every event.
    sink: Callable[[Job, JSONObject | bytes], None] | None = None
    #: Written only by :meth:`move`.
    _state: JobState = field(default=JobState.QUEUED, init=False)
    #: Told of every state change, with its reason (not logged: four lines a prompt would cost more
    #: than the rest of its way through the pool).
    on_move: Callable[[Job, JobState, str], None] | None = field(default=None, repr=False)
    backend_id: BackendId | None = None
    #: The backend's current model differed from the job's: the job loads it.
    loads_model: bool = False
    #: Key of the link (backend connection) the job was sent on.
    link_key: str | None = None
    created: float = field(default_factory=time.monotonic)
    #: The last ``executing`` event, re-sent to a client that reconnects while it runs.
    last_executing: JSONObject | None = None
    #: A history entry the pool made itself (failed jobs), or one cached from the backend.
    history: JSONObject | None = None
    finished: asyncio.Future[Outcome] | None = field(default=None, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def item(self) -> list[Any]:
        """ComfyUI's 5-list for /queue and /history: [number, id, graph, extra_data, outputs]."""
        extra = {**self.extra_data, "client_id": self.client_id} if self.client_id is not None else self.extra_data
        return [self.number, self.prompt_id, self.graph, extra, self.outputs]

    @property
    def state(self) -> JobState:
        return self._state

    def move(self, new: JobState) -> None:
        """The one writer of the state: TransitionError for a change states.py does not allow."""
        why = check_transition(self._state, new)
        self._state = new
        if self.on_move is not None:
            self.on_move(self, new, why)

    @property
    def started(self) -> bool:
        return self.state is JobState.RUNNING

    @property
    def live(self) -> bool:
        return self.state not in FINISHED

    def arm(self) -> asyncio.Future[Outcome]:
        """A fresh future for the next attempt's outcome."""
        self.finished = asyncio.get_running_loop().create_future()
        return self.finished

    def settle(self, outcome: Outcome) -> None:
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(outcome)
