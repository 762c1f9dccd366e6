"""Time as the supervisor sees it, so tests can drive the stop sequence and the restart delay
with an injected clock instead of waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def within(self, awaitable: Awaitable[object], seconds: float) -> bool:
        """Await ``awaitable`` for at most ``seconds``; True if it finished (it is cancelled if not)."""
        ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def within(self, awaitable: Awaitable[object], seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await awaitable
        except TimeoutError:
            return False
        return True


REAL_CLOCK = RealClock()
