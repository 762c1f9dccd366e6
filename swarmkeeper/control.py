"""A worker's watch on its master: with ``--require_control_within <minutes>``, a server that got no
``AdminTakeControl`` ping for that long stops itself, as SwarmUI's workers do, so a worker whose
master is gone does not run on (and cost) forever."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger("swarmkeeper.control")


class ControlWatch:
    """When the last ping came; :meth:`run` stops the server once none came within ``limit`` seconds
    (0: never)."""

    def __init__(self, limit: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.last = clock()
        self.pings = 0

    def ping(self) -> None:
        self.last = self.clock()
        self.pings += 1

    def overdue(self) -> float:
        """Seconds past the limit (negative: time left)."""
        return self.clock() - self.last - self.limit

    async def run(self, stop: Callable[[], None], step: float = 1.0) -> None:
        if self.limit <= 0:
            return
        while True:  # a ping moves the deadline: look again when the old one passes
            late = self.overdue()
            if late >= 0:
                break
            await asyncio.sleep(min(step, -late))
        log.warning("No AdminTakeControl came within %g minutes (--require_control_within): shutting down",
                    self.limit / 60)
        stop()
