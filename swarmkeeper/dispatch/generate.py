"""SwarmUI's generation routes, basic subset (what a SwarmUI chaining to us and SwarmUI bots call):
``GenerateText2Image``, ``GenerateText2ImageWS`` and ``InterruptAll``. Each image is one standard
text-to-image graph (graph.py) run through the pool, on whichever backend the scheduler gives it.

Images are saved as SwarmUI saves them and answered as ``View/<user>/raw/...`` paths (served by
outputs/view.py); with ``donotsave`` they come back inline as ``data:image/png;base64,...`` URLs, as
SwarmUI answers then (a chaining SwarmUI sends it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from swarmkeeper.api import basic_routes
from swarmkeeper.api.permissions import BASIC_IMAGE_GENERATION
from swarmkeeper.api.routes import APICall, RawInput, RouteTable
from swarmkeeper.clients.comfyui import BinaryEvent
from swarmkeeper.dispatch.generate_checks import Prepared, prepare
from swarmkeeper.dispatch.graph import ParamError, text_to_image
from swarmkeeper.dispatch.pool.core import Pool
from swarmkeeper.dispatch.pool.jobs import Job, JobState
from swarmkeeper.dispatch.pool.routes import POOL_KEY
from swarmkeeper.dispatch.pool.transfer import fetch
from swarmkeeper.exceptions import APIError
from swarmkeeper.outputs import BadPath, check_user_id
from swarmkeeper.outputs.paths import EXTENSIONS
from swarmkeeper.outputs.view import output_store
from swarmkeeper.types import JSONObject

routes = RouteTable()
Send = Callable[[JSONObject], Awaitable[None]]
#: What becomes of a finished image (its index, bytes, media type): the URL to answer.
Output = Callable[[int, bytes, str], str]


def pool_of(call: APICall) -> Pool:
    pool = call.services.extra.get(POOL_KEY)
    if not isinstance(pool, Pool):
        raise APIError("Generation is not available: the dispatch feature is not running.")
    return pool


@dataclass
class Tracked:
    """One image of a generation: its job, and what its events said."""

    index: int
    job: Job | None = None
    images: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    nodes_done: int = 0


class Generation:
    """The images of one request, followed through the pool to their files."""

    def __init__(self, pool: Pool, session: str | None, send: Send | None, output: Output) -> None:
        self.pool = pool
        self.session = session
        self.send = send
        self.output = output
        #: One id for the whole request, as SwarmUI's UserRequestId (every image message carries it).
        self.request_id = uuid.uuid4().hex
        self.events: asyncio.Queue[tuple[Tracked, str, Any]] = asyncio.Queue()
        self.tracked: list[Tracked] = []

    def add(self, graph: JSONObject) -> None:
        tracked = Tracked(len(self.tracked))
        status, answer = self.pool.accept({"prompt": graph}, session=self.session,
                                          sink=lambda job, event: self.events.put_nowait((tracked, "event", event)))
        if status != 200:
            error = answer.get("error") or {}
            raise APIError("\n".join(str(part) for part in (error.get("message"), error.get("details")) if part))
        tracked.job = self.pool.jobs[answer["prompt_id"]]
        self.tracked.append(tracked)

    async def run(self) -> list[str]:
        """Wait for every image; the data URLs in order, or APIError with the first failure."""
        urls: dict[int, str] = {}
        left = len(self.tracked)
        try:
            while left:
                tracked, _, event = await self.events.get()
                if await self._on(tracked, event, urls):
                    left -= 1
        except BaseException:
            await self.stop()
            raise
        failed = [tracked.error for tracked in self.tracked if tracked.error]
        if failed:
            raise APIError(failed[0])
        return [urls[index] for index in sorted(urls)]

    async def _on(self, tracked: Tracked, event: Any, urls: dict[int, str]) -> bool:
        """Handle one event; True when that image is finished."""
        if isinstance(event, bytes):
            await self._preview(tracked, event)
            return False
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "executed" and isinstance(data.get("output"), dict):
            tracked.images += [item for item in data["output"].get("images") or [] if isinstance(item, dict)]
        elif kind == "execution_error":
            tracked.error = str(data.get("exception_message") or "The backend failed to generate the image.").strip()
        elif kind == "execution_interrupted":
            tracked.error = "Generation was interrupted."
        elif kind in ("executing", "progress"):
            await self._progress(tracked, kind, data)
        if kind == "swarmkeeper_cancelled":
            tracked.error = tracked.error or "Generation was interrupted."
            return True
        if kind == "executing" and data.get("node") is None:
            if tracked.error is None:
                await self._collect(tracked, urls)
            return True
        return False

    async def _collect(self, tracked: Tracked, urls: dict[int, str]) -> None:
        for item in tracked.images[:1]:
            url = await self._fetch(tracked, item)
            if url is None:
                tracked.error = "The generated image could not be read from its backend."
                return
            urls[tracked.index] = url
            if self.send is not None:
                await self.send({"image": url, "batch_index": str(tracked.index),
                                 "request_id": self.request_id, "metadata": None})

    async def _fetch(self, tracked: Tracked, item: dict[str, Any]) -> str | None:
        """The image read from its backend, handed to ``output``: the URL to answer, or None."""
        job = tracked.job
        record = self.pool.backend_record(job.backend_id) if job else None
        target = self.pool.targets.of(record) if record is not None else None
        if target is None:
            return None
        kind, subfolder, shown = str(item.get("type") or "output"), str(item.get("subfolder") or ""), item["filename"]
        located = self.pool.files.locate(kind, subfolder, shown)
        params = {"filename": located.real_name if located else shown, "subfolder": subfolder, "type": kind}
        answer = await fetch(target, params)
        if answer is None:
            return None
        try:
            return self.output(tracked.index, bytes(answer.body), answer.media_type or "")
        except OSError as error:
            raise APIError(f"The generated image could not be saved: {error.strerror or error}") from None

    async def _progress(self, tracked: Tracked, kind: str, data: JSONObject) -> None:
        if self.send is None or tracked.job is None:
            return
        if kind == "executing" and data.get("node") is not None:
            tracked.nodes_done += 1
        total = max(1, len(tracked.job.graph))
        current = data.get("value", 0) / data["max"] if kind == "progress" and data.get("max") else 0.0
        await self.send({"gen_progress": {"batch_index": str(tracked.index),
                                          "overall_percent": min(1.0, (tracked.nodes_done - 1) / total),
                                          "current_percent": current}})

    async def _preview(self, tracked: Tracked, frame: bytes) -> None:
        if self.send is None:
            return
        event = BinaryEvent.parse(frame)
        if event.image is None or event.image_type is None:
            return
        preview = f"data:{event.image_type};base64,{base64.b64encode(event.image).decode()}"
        await self.send({"gen_progress": {"batch_index": str(tracked.index), "overall_percent": 0.0,
                                          "current_percent": 0.0, "preview": preview}})

    async def stop(self) -> None:
        """The caller went away: take its images out of the queues, interrupt the running ones."""
        for tracked in self.tracked:
            job = tracked.job
            if job is None or not job.live:
                continue
            with contextlib.suppress(Exception):
                if job.state is JobState.RUNNING:
                    await self.pool.runner.interrupt(job)
                else:
                    await self.pool.delete_queued([job.prompt_id])


def data_url(index: int, body: bytes, media_type: str) -> str:
    """An image inline, as SwarmUI answers with ``donotsave``."""
    return f"data:{media_type};base64,{base64.b64encode(body).decode()}"


def saver(call: APICall, prepared: Prepared) -> Output:
    """Images saved under the caller's output folder, answered as ``View/<user>/...`` paths."""
    store = output_store(call.services)
    params = prepared.params

    def save(index: int, body: bytes, media_type: str) -> str:
        extension = EXTENSIONS.get(media_type.split(";", 1)[0].strip())
        if extension is None:
            raise APIError(f"The backend's output is not an image ({media_type or 'no type'}).")
        return store.save(call.user.id, body, extension, index=index, prompt=params.prompt, model=params.model)
    return save


async def generate(call: APICall, images: int, raw: JSONObject, send: Send | None) -> list[str]:
    pool = pool_of(call)
    try:
        prepared = prepare({**raw, "images": images}, pool.union_info(), call.services.registry.all())
        if not prepared.do_not_save:
            check_user_id(call.user.id)  # before anything is queued
        output = data_url if prepared.do_not_save else saver(call, prepared)
    except (ParamError, BadPath) as error:
        raise APIError(str(error)) from None
    generation = Generation(pool, call.session.id if call.session else None, send, output)
    for index in range(prepared.params.images):
        generation.add(text_to_image(prepared.params, prepared.checkpoint, index))
    return await generation.run()


@routes.route("GenerateText2Image", flag=BASIC_IMAGE_GENERATION, returns="""
    "images": ["View/local/raw/2024-01-31/12340-a cat-sd15.png"]
""")
async def generate_text2image(
    call: APICall,
    images: Annotated[int, "The number of images to generate."],
    rawInput: Annotated[RawInput, "Raw mapping of input: the basic T2I parameters (prompt, negativeprompt, model, "
                                  "steps, cfgscale, seed, width, height, sampler, scheduler, donotsave) on the "
                                  "same level as `images`."],
) -> JSONObject:
    """Generate images from text prompts, directly as an HTTP route (on whichever backends are free)."""
    return {"images": await generate(call, images, rawInput, None)}


@routes.route("GenerateText2ImageWS", flag=BASIC_IMAGE_GENERATION, websocket=True, returns="""
    "status": {"waiting_gens": 0, "loading_models": 0, "waiting_backends": 0, "live_gens": 0},
    "backend_status": {"status": "running", "class": "", "message": "", "any_loading": false},
    "supported_features": ["comfyui"]
""")
async def generate_text2image_ws(
    call: APICall,
    images: Annotated[int, "The number of images to generate."],
    rawInput: Annotated[RawInput, "Raw mapping of input, as GenerateText2Image."],
) -> JSONObject:
    """Generate images from text prompts, with websocket updates: status, gen_progress (with previews when the
    backend sends them), image (per image, as it is done), discard_indices, then the final status."""
    assert call.send is not None
    await call.send(await basic_routes.get_current_status(call))
    await generate(call, images, rawInput, call.send)
    await call.send({"discard_indices": []})
    await call.send({"socket_intention": "close"})
    return await basic_routes.get_current_status(call)


@routes.route("InterruptAll", flag=BASIC_IMAGE_GENERATION, returns='"success": true')
async def interrupt_all(
    call: APICall,
    other_sessions: Annotated[bool, "If true, interrupt the generations of this user's other sessions too."] = False,
) -> JSONObject:
    """Interrupt this session's generations (queued ones are dropped, running ones stop at their next node)."""
    pool = pool_of(call)
    own = call.session.id if call.session else None
    for job in list(pool.jobs.values()):
        if not job.live or job.session is None:
            continue
        session = call.services.sessions.by_key(job.session)
        if job.session == own or (other_sessions and session is not None and session.user_id == call.user.id):
            if job.state is JobState.RUNNING:
                await pool.runner.interrupt(job)
            else:
                await pool.delete_queued([job.prompt_id])
    return {"success": True}
