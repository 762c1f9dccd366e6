"""A short-lived cache of database rows (users, API keys), so a call with a session or a key does
not wait on SQLite every time. Changes made through the server drop their entry at once; a change
made by the CLI in another process is seen within ``seconds`` (1 s by default)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

SECONDS = 1.0
MAX_ENTRIES = 10000


class RowCache(Generic[K, V]):
    def __init__(self, seconds: float = SECONDS, clock: Callable[[], float] = time.monotonic,
                 size: int = MAX_ENTRIES) -> None:
        self.seconds = seconds
        self.clock = clock
        self.size = size
        self._entries: dict[K, tuple[float, V]] = {}
        #: Bumped by every drop: a lookup that started before a change must not cache what it read.
        self.generation = 0

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) if a fresh entry is held (the value may be None: "no such row")."""
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry[0] >= self.seconds:
            return False, None
        return True, entry[1]

    def put(self, key: K, value: V, generation: int) -> None:
        """Keep a row read when ``generation`` was current (ignored if something changed since)."""
        if generation != self.generation:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()  # rare; a cold cache only costs lookups
        self._entries[key] = (self.clock(), value)

    def drop(self, key: K) -> None:
        self.generation += 1
        self._entries.pop(key, None)
