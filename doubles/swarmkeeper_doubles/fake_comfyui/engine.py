"""The fake's state apart from HTTP: the prompt queue and its worker, history, sockets and cache."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import itertools
import json
import struct
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from swarmkeeper_doubles.fake_comfyui.execution import Execution
from swarmkeeper_doubles.fake_comfyui.files import Files
from swarmkeeper_doubles.fake_comfyui.graph import signatures
from swarmkeeper_doubles.fake_comfyui.nodes import NodeResult
from swarmkeeper_doubles.fake_comfyui.options import FakeOptions, Fault
from swarmkeeper_doubles.fake_comfyui.reference import JSONObject, fixture, now_ms
from swarmkeeper_doubles.fake_comfyui.validation import prompt_error, validate

#: Frames kept per socket in ``Client.sent``.
SENT_KEPT = 10_000


@dataclass
class Job:
    """One queued prompt; ``item()`` is ComfyUI's 5-list for /queue and /history."""

    number: int | float
    prompt_id: str
    graph: JSONObject
    extra_data: JSONObject
    outputs: list[str]

    @property
    def client_id(self) -> str | None:
        return self.extra_data.get("client_id")

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


@dataclass
class Call:
    """One received HTTP request, for tests to inspect."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def as_dict(self) -> JSONObject:
        keys = ("method", "path", "route", "query", "body", "headers", "time")
        return {k: getattr(self, k) for k in keys}


@dataclass
class Client:
    """One connected websocket."""

    socket: WebSocket
    preview_metadata: bool = False
    #: The last frames sent to it, as they went (tests compare them with what a relay passed on).
    sent: deque[str | bytes] = field(default_factory=lambda: deque(maxlen=SENT_KEPT))


def with_checkpoints(info: JSONObject, options: FakeOptions) -> JSONObject:
    """``object_info`` listing ``models["checkpoints"]`` in CheckpointLoaderSimple, as a real ComfyUI
    lists the checkpoints of its model folders (the fixture has none)."""
    checkpoints = list(options.models.get("checkpoints", []))
    if not checkpoints:
        return info
    loader = copy.deepcopy(info["CheckpointLoaderSimple"])
    loader["input"]["required"]["ckpt_name"][0] = checkpoints
    return {**info, "CheckpointLoaderSimple": loader}


class FakeComfy:
    """The fake's state apart from HTTP: queue, worker, history, files, sockets and cache."""

    def __init__(self, options: FakeOptions, on_crash: Callable[[], None]) -> None:
        self.options = options
        self.fault: Fault | None = options.fault
        self.on_crash = on_crash
        self.object_info: JSONObject = with_checkpoints(fixture("object_info_noapi.json"), options)
        self.output_classes = {n for n, i in self.object_info.items() if i.get("output_node")}
        self.calls: list[Call] = []
        self.number = 0
        self.started = 0
        self.pending: list[tuple[float, int, Job]] = []
        self.order = itertools.count()
        self.running: Execution | None = None
        self.history: dict[str, JSONObject] = {}
        self.files = Files()
        self.clients: dict[str, Client] = {}
        self.cache: dict[str, NodeResult] = {}
        self.free_flags: JSONObject = {}
        self.interrupted = False
        self.wake = asyncio.Event()

    # ----- queue

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    async def submit(self, body: JSONObject) -> tuple[int, JSONObject]:
        """POST /prompt: validate, queue, and answer (status, body)."""
        number: int | float = body["number"] if isinstance(body.get("number"), int | float) else self.number
        number = -number if body.get("front") else number
        self.number += 1
        if "prompt" not in body:
            error = prompt_error("no_prompt", "No prompt provided", "No prompt provided")
            return 400, {"error": error, "node_errors": {}}
        verdict = validate(body["prompt"], self.object_info, self.files.inputs())
        if verdict.error is not None:
            return 400, {"error": verdict.error, "node_errors": verdict.node_errors}
        targets = body.get("partial_execution_targets")
        outputs = [o for o in verdict.outputs if not targets or o in targets]
        job = Job(number, str(body.get("prompt_id") or uuid.uuid4()), body["prompt"], self.extra(body), outputs)
        heapq.heappush(self.pending, (number, next(self.order), job))
        self.wake.set()
        await self.broadcast_status()
        return 200, {"prompt_id": job.prompt_id, "number": number, "node_errors": verdict.node_errors}

    def extra(self, body: JSONObject) -> JSONObject:
        """extra_data as history shows it: client_id and create_time added, API keys removed."""
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        extra["create_time"] = now_ms()
        for secret in ("auth_token_comfy_org", "api_key_comfy_org"):
            extra.pop(secret, None)
        return extra

    def queue_view(self) -> JSONObject:
        running = [self.running.job.item()] if self.running else []
        return {"queue_running": running, "queue_pending": [job.item() for _, _, job in sorted(self.pending)]}

    def change_queue(self, body: JSONObject) -> None:
        """POST /queue: ``clear`` or ``delete`` pending prompts."""
        if body.get("clear"):
            self.pending.clear()
        drop = set(body.get("delete") or [])
        self.pending = [entry for entry in self.pending if entry[2].prompt_id not in drop]
        heapq.heapify(self.pending)

    def interrupt(self, prompt_id: str | None) -> None:
        """POST /interrupt: takes effect at the running prompt's next node."""
        if self.running and prompt_id in (None, self.running.job.prompt_id):
            self.interrupted = True

    def free(self, body: JSONObject) -> None:
        """POST /free: flags, applied between prompts."""
        self.free_flags.update({k: bool(body[k]) for k in ("unload_models", "free_memory") if k in body})
        self.wake.set()

    def apply_free(self) -> None:
        """As ComfyUI's worker does: ``free_memory`` also resets the node cache."""
        if self.free_flags.pop("free_memory", False):
            self.cache.clear()
        self.free_flags.clear()

    def history_view(self, max_items: int | None, offset: int) -> JSONObject:
        """GET /history: all, or ``max_items`` from ``offset`` (the last ones by default)."""
        if max_items is None:
            return dict(self.history)
        start = len(self.history) - max_items if offset < 0 else offset
        return dict(list(self.history.items())[max(start, 0) :][:max_items])

    def change_history(self, body: JSONObject) -> None:
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete") or []:
            self.history.pop(prompt_id, None)

    # ----- sockets

    def targets(self, sid: str | None) -> list[tuple[str, Client]]:
        """The socket of ``sid``, or every socket when ``sid`` is None."""
        if sid is None:
            return list(self.clients.items())
        client = self.clients.get(sid)
        return [(sid, client)] if client else []

    async def send(self, sid: str | None, kind: str, data: JSONObject) -> None:
        """One JSON event to a client, or to everyone (a closed socket is skipped)."""
        for _, client in self.targets(sid):
            text = json.dumps({"type": kind, "data": data})
            client.sent.append(text)
            with contextlib.suppress(Exception):
                await client.socket.send_text(text)

    async def send_preview(self, sid: str | None, png: bytes, metadata: JSONObject, progress: JSONObject) -> None:
        """A preview frame with its ``progress``: type 4 then progress for clients that asked for
        preview metadata, else progress then type 1 (PNG)."""
        meta = json.dumps(metadata).encode()
        for target, client in self.targets(sid):
            if not client.preview_metadata:
                await self.send(target, "progress", progress)
            frame = struct.pack(">II", 4, len(meta)) + meta if client.preview_metadata else struct.pack(">II", 1, 2)
            client.sent.append(frame + png)
            with contextlib.suppress(Exception):
                await client.socket.send_bytes(frame + png)
            if client.preview_metadata:
                await self.send(target, "progress", progress)

    async def broadcast_status(self) -> None:
        await self.send(None, "status", {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}})

    async def connected(self, sid: str, client: Client) -> None:
        """A socket opened: status with its sid, and the current node if its prompt runs."""
        self.clients[sid] = client
        status = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}, "sid": sid}
        await self.send(sid, "status", status)
        run = self.running
        if run and run.job.client_id == sid and run.current:
            await self.send(sid, "executing", run.node_data(run.current))

    def disconnected(self, sid: str, client: Client) -> None:
        if self.clients.get(sid) is client:
            del self.clients[sid]

    # ----- worker

    async def worker(self) -> None:
        """Run prompts one at a time, lowest number first, forever."""
        while True:
            self.apply_free()
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
                continue
            _, _, job = heapq.heappop(self.pending)
            try:
                await self.execute(job)
            except Exception:  # a bug in the fake must not stop its queue; show it, go on
                traceback.print_exc()
                self.running = None

    async def execute(self, job: Job) -> None:
        """One prompt: run it, keep its results as the cache, record its history entry."""
        keys = signatures(job.graph)
        cached = {n: self.cache[keys[n]] for n in job.graph if keys[n] in self.cache}
        self.running = run = Execution(self, job, cached)
        self.interrupted = False
        self.started += 1
        await self.broadcast_status()
        await run.run()
        self.cache = {keys[n]: r for n, r in run.results.items()}
        self.history[job.prompt_id] = run.history_entry()
        self.running = None
        await self.broadcast_status()
        await run.emit("executing", run.node_data(None))
