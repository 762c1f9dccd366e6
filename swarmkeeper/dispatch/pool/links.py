"""One event websocket per backend, shared by every pool prompt sent there.

Each prompt is sent with the link's own ``client_id``, so the backend sends its events here; the
link hands each event to the job whose ``prompt_id`` it carries (binary preview frames without
metadata go to the prompt the backend is running), with the frame as it came, so the pool can
pass it on without encoding it again. ``status`` and ``feature_flags`` are the backend's own and
stay here: the pool sends its clients its own.

When the socket drops the link tries once to reconnect with the same id (ComfyUI then carries on
sending events for the prompts it holds); if that fails the backend is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from typing import Any, Protocol

from swarmkeeper.clients.comfyui import BinaryEvent, BinaryEventType, EventFeed, parse_text_event, peek_type
from swarmkeeper.clients.errors import ComfyError, ComfyUnreachable
from swarmkeeper.dispatch.pool.jobs import Job
from swarmkeeper.dispatch.targets import Target

log = logging.getLogger("swarmkeeper.dispatch.pool")
PREVIEW_FLAGS = {"supports_preview_metadata": True}
#: Seconds a reconnect may take before the backend counts as lost.
RECONNECT_TIMEOUT = 5.0
IGNORED = frozenset({"status", "feature_flags", "crystools.monitor"})
#: How ComfyUI writes ``progress_state``, the most frequent event: its prompt is read from here.
PROGRESS_PREFIX = '{"type": "progress_state", "data": {"prompt_id": "'
#: How ComfyUI writes ``progress`` (a sampler's step, an image sent): its prompt is read from here.
PROGRESS_STEP = re.compile(r'\{"type": "progress", "data": \{"value": [-+.\deE]+, "max": [-+.\deE]+, '
                           r'"prompt_id": "([^"\\]*)"')


class LinkOwner(Protocol):
    def on_event(self, job: Job, kind: str, data: dict[str, Any], text: str | None = None) -> None: ...

    def on_progress(self, job: Job, kind: str, text: str) -> None: ...

    def on_binary(self, job: Job, event: BinaryEvent, frame: bytes) -> None: ...

    async def on_lost(self, link: Link, reason: str, reconnected: bool) -> None: ...


class Link:
    def __init__(self, target: Target, owner: LinkOwner) -> None:
        self.target = target
        self.owner = owner
        self.client_id = f"swarmkeeper-{uuid.uuid4().hex}"
        self.jobs: dict[str, Job] = {}
        #: The prompt the backend runs now (from execution_start), for frames that name none.
        self.running: str | None = None
        self.feed: EventFeed | None = None
        self.closed = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return self.target.key

    async def open(self) -> None:
        self.feed = await self._connect()
        self._watcher = asyncio.create_task(self._watch(), name=f"pool-link-{self.key}")

    async def _connect(self) -> EventFeed:
        return await self.target.client().open_feed(self.client_id, self._on_frame, feature_flags=PREVIEW_FLAGS)

    async def close(self) -> None:
        self.closed = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self.feed is not None:
            await self.feed.aclose()

    async def _watch(self) -> None:
        """Frames are relayed as they arrive (:meth:`_on_frame`); this waits for the socket to end,
        and reconnects or gives the backend up, until the link is closed."""
        while not self.closed and self.feed is not None:
            reason = await self.feed.ended
            if not self.closed:
                await self._recover(reason)

    async def _recover(self, reason: str) -> None:
        if self.feed is not None:
            await self.feed.aclose()
        reconnected = False
        with contextlib.suppress(ComfyError, TimeoutError, OSError):
            async with asyncio.timeout(RECONNECT_TIMEOUT):
                self.feed = await self._connect()
                reconnected = True
        if reconnected:
            log.warning("Event connection to backend #%s dropped (%s); reconnected", self.target.record.id, reason)
        else:
            self.closed = True
        await self.owner.on_lost(self, reason, reconnected)

    def _on_frame(self, frame: str | bytes) -> None:
        try:
            self._dispatch(frame)
        except ComfyError:  # a frame that is not ComfyUI's: the feed ends with its reason
            raise
        except Exception:  # a bug here must not leave prompts hanging: the feed ends, the link is lost
            log.exception("Event relay from backend %s failed", self.key)
            raise

    def _dispatch(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            binary = BinaryEvent.parse(frame)
            prompt_id = binary.metadata.get("prompt_id") if binary.event_type == \
                BinaryEventType.PREVIEW_IMAGE_WITH_METADATA else self.running
            job = self.jobs.get(prompt_id) if isinstance(prompt_id, str) else None
            if job is not None:
                self.owner.on_binary(job, binary, frame)
            return
        if frame.startswith(PROGRESS_PREFIX) and self._progress(frame):
            return
        step = PROGRESS_STEP.match(frame)
        if step is not None:
            job = self.jobs.get(step[1])
            if job is not None:
                self.owner.on_progress(job, "progress", frame)
            return
        if peek_type(frame) in IGNORED:  # the backend's own status, several per prompt: not even parsed
            return
        event = parse_text_event(frame)
        kind = event.get("type")
        data = event.get("data")
        if kind in IGNORED or not isinstance(data, dict):
            return
        prompt_id = data.get("prompt_id")
        job = self.jobs.get(prompt_id) if isinstance(prompt_id, str) else None
        if job is None:
            return
        if kind == "execution_start":
            self.running = prompt_id
        self.owner.on_event(job, str(kind), data, frame)

    def _progress(self, frame: str) -> bool:
        """A ``progress_state`` routed by the prompt id it starts with, without parsing the rest
        (a ``progress`` is routed so too, by PROGRESS_STEP);
        False when that id is not plainly there (then the frame is parsed)."""
        start = len(PROGRESS_PREFIX)
        end = frame.find('"', start)
        prompt_id = frame[start:end]
        if end < 0 or "\\" in prompt_id:
            return False
        job = self.jobs.get(prompt_id)
        if job is not None:
            self.owner.on_progress(job, "progress_state", frame)
        return True


class Links:
    """The open links, by target key; opened on first use, dropped when lost or stale."""

    def __init__(self, owner: LinkOwner) -> None:
        self.owner = owner
        self._links: dict[str, Link] = {}
        self._opening: dict[str, asyncio.Future[Link]] = {}

    def all(self) -> list[Link]:
        return list(self._links.values())

    def ready(self, target: Target) -> Link | None:
        """The link to a target if it is open now (no waiting)."""
        link = self._links.get(target.key)
        return link if link is not None and not link.closed else None

    async def get(self, target: Target) -> Link:
        """The open link to a target (raises ComfyError when it cannot be opened)."""
        link = self._links.get(target.key)
        if link is not None and not link.closed:
            return link
        pending = self._opening.get(target.key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Link] = asyncio.get_running_loop().create_future()
        self._opening[target.key] = future
        try:
            link = Link(target, self.owner)
            await link.open()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:  # a closed client (the backend restarting) is unreachable too
            mapped = error if isinstance(error, ComfyError) else ComfyUnreachable(f"The backend is not connected "
                                                                                  f"({type(error).__name__}).")
            future.set_exception(mapped)
            future.exception()
            raise mapped from None
        finally:
            self._opening.pop(target.key, None)
        self._links[target.key] = link
        future.set_result(link)
        return link

    def by_key(self, key: str | None) -> Link | None:
        return self._links.get(key) if key is not None else None

    def forget(self, link: Link) -> None:
        if self._links.get(link.key) is link:
            del self._links[link.key]

    async def close(self) -> None:
        for link in list(self._links.values()):
            await link.close()
        self._links.clear()
