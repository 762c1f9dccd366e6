"""A small in-process publish/subscribe hub for backend changes.

The registry's state changes (status, settings, membership) are published here; the web page's
push stream and the metrics read them. Publishing never blocks: a subscriber that falls behind
loses its oldest events and is told so (``lost`` counts them), and can re-read the full list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum

from swarmkeeper.types import BackendId


class EventKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    EDITED = "edited"  # settings, title, id or enabled changed
    STATUS = "status"  # status or its reason changed


@dataclass(frozen=True)
class BackendEvent:
    kind: EventKind
    backend_id: BackendId
    status: str = ""
    reason: str = ""
    time: float = field(default_factory=time.time)


class Subscription:
    """One subscriber's queue; iterate it with ``async for``."""

    def __init__(self, hub: EventHub, size: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[BackendEvent] = asyncio.Queue(maxsize=size)
        self.lost = 0

    def put(self, event: BackendEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.lost += 1
        self._queue.put_nowait(event)

    async def get(self) -> BackendEvent:
        return await self._queue.get()

    def get_nowait(self) -> BackendEvent | None:
        """The next queued event, or None if there is none yet."""
        return None if self._queue.empty() else self._queue.get_nowait()

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[BackendEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[BackendEvent]:
        while True:
            yield await self._queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, size: int = 1000) -> Subscription:
        subscription = Subscription(self, size)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, event: BackendEvent) -> None:
        for subscription in list(self._subscribers):
            subscription.put(event)
