"""The idle memory policy (``ClearVRAMAfterMinutes``, ``ClearSystemRAMAfterMinutes``, reference
§3.8), per backend: a running backend with no generation in flight for that long is asked to free
its VRAM (and later its system RAM too), once per idle period. -1 disables either.

SwarmUI measures one idle time for the whole server; here each backend has its own, so a busy
GPU never keeps an idle one's model loaded, and freeing one never unloads a busy one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.config import BackendsSettings
from swarmkeeper.types import BackendId

log = logging.getLogger("swarmkeeper.dispatch.idle")
#: Seconds between two looks at the backends.
INTERVAL = 10.0


class Clear(StrEnum):
    VRAM = "vram"
    SYSTEM_RAM = "system_ram"


@dataclass(frozen=True)
class IdleLimits:
    """Seconds of idleness before each clear, or None when disabled."""

    vram: float | None = 600.0
    system_ram: float | None = 3600.0

    @classmethod
    def of(cls, settings: BackendsSettings) -> IdleLimits:
        def limit(minutes: float) -> float | None:
            return None if minutes < 0 else minutes * 60.0

        return cls(limit(settings.ClearVRAMAfterMinutes), limit(settings.ClearSystemRAMAfterMinutes))


@dataclass
class IdlePolicy:
    """Which backends are due a clear; remembers what was done per idle period (no I/O)."""

    #: Per backend: the last-used stamp of the idle period, and the clears done in it.
    done: dict[BackendId, tuple[float, set[Clear]]] = field(default_factory=dict)

    def due(self, records: list[BackendRecord], limits: IdleLimits, now: float) -> list[tuple[BackendRecord, Clear]]:
        actions: list[tuple[BackendRecord, Clear]] = []
        for record in records:
            if (record.status is not BackendStatus.RUNNING or record.shutdown_reserved or record.usages > 0
                    or record.last_used is None):
                continue
            stamp, cleared = self.done.get(record.id, (record.last_used, set()))
            if stamp != record.last_used:
                stamp, cleared = record.last_used, set()
            self.done[record.id] = (stamp, cleared)
            idle = now - record.last_used
            for kind, limit in ((Clear.SYSTEM_RAM, limits.system_ram), (Clear.VRAM, limits.vram)):
                if limit is not None and idle >= limit and kind not in cleared:
                    cleared.add(kind)
                    actions.append((record, kind))
                    if kind is Clear.SYSTEM_RAM:
                        cleared.add(Clear.VRAM)  # freeing system RAM frees VRAM too
        return actions


async def clear(record: BackendRecord, kind: Clear) -> None:
    """Free one backend's memory; its loaded model is gone after a successful VRAM clear."""
    try:
        freed = await record.backend.free_memory(kind is Clear.SYSTEM_RAM)
    except Exception as error:  # one backend's trouble never stops the policy
        log.warning("Backend #%s could not free memory after being idle: %s", record.id, error)
        return
    if freed:
        log.info("Backend #%s was idle: freed its %s", record.id, "system RAM and VRAM" if kind is Clear.SYSTEM_RAM
                 else "VRAM")
        record.backend.current_model = None


async def run(registry: BackendRegistry, limits: Callable[[], IdleLimits], *,
              clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL) -> None:
    policy = IdlePolicy()
    while True:
        await asyncio.sleep(interval)
        for record, kind in policy.due(registry.all(), limits(), clock()):
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(120):
                    await clear(record, kind)
