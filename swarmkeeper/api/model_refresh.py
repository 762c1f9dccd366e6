"""TriggerRefresh's work, one per server (``services.models``)."""

from __future__ import annotations

import asyncio
import logging

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.status import BackendStatus

log = logging.getLogger("swarmkeeper.models")
#: Longest one backend may take to re-read its model lists.
REFRESH_TIMEOUT = 120.0


class ModelRefresher:
    """TriggerRefresh's work: every running backend re-reads its lists, one refresh at a time. A
    call arriving during a refresh does not start another, nor wait for it: servers that use each
    other pass a refresh on to each other, and waiting there would hold both until a timeout."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def refresh(self, records: list[BackendRecord]) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            running = [record for record in records if record.status is BackendStatus.RUNNING]
            await asyncio.gather(*(self._refresh_one(record) for record in running))

    @staticmethod
    async def _refresh_one(record: BackendRecord) -> None:
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                await record.backend.refresh_models()
        except Exception as error:  # one backend's trouble never fails the refresh of the others
            log.warning("Backend #%s failed to refresh its model lists: %s", record.id, error)
