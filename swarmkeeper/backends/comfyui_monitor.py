"""The health monitor of a by-URL ComfyUI backend: ``GET /features`` every few seconds.

SwarmUI runs it only with ``AllowIdle`` (unreachable means ``idle``, reachable again means
``running``). swarmkeeper runs it for every by-URL backend so its status tells the truth: without
``AllowIdle`` a ComfyUI that stops answering shows as ``errored`` (with the reason) instead of
staying ``running``. Either way it comes back by itself, and, unlike SwarmUI, re-reads
``object_info`` when it does (the ComfyUI may have been restarted with other nodes or models).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.clients.errors import ComfyError

if TYPE_CHECKING:
    from swarmkeeper.backends.comfyui_common import ComfyUIBackend


class HealthMonitor:
    def __init__(self, backend: ComfyUIBackend[Any], *, allow_idle: bool, interval: float) -> None:
        self.backend = backend
        self.allow_idle = allow_idle
        self.interval = interval
        #: True while this monitor holds the backend out of ``running`` (idle, or errored).
        self.lost = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a bug here must not end the watch for good
                self.backend.host.log.exception("Health check of ComfyUI at %s failed", self.backend.api_url)

    def watching(self) -> bool:
        """The monitor acts only on a backend that is running, or that it took out of running."""
        status = self.backend.host.status
        return status is BackendStatus.RUNNING or (self.lost and status in (BackendStatus.IDLE,
                                                                              BackendStatus.ERRORED))

    async def check(self) -> None:
        """One health check, and the status change it implies."""
        if not self.watching() or self.backend.client is None:
            return
        try:
            await self.backend.client.features()
            if self.lost:
                await self.backend.reload_object_info()
        except ComfyError as error:
            if self.watching():
                self.lose(error.message)
            return
        if self.watching() and self.lost:
            self.lost = False
            self.backend.host.log.info("ComfyUI at %s answers again", self.backend.api_url)
            self.backend.host.set_status(BackendStatus.RUNNING, "")

    def lose(self, message: str) -> None:
        """Take the backend out of ``running``: ``idle`` with AllowIdle, else ``errored``."""
        url = self.backend.api_url
        if self.allow_idle:
            status = BackendStatus.IDLE
            reason = (f"ComfyUI at {url} is not answering ({message}). AllowIdle is on: it becomes running "
                      "again by itself when ComfyUI answers.")
        else:
            status = BackendStatus.ERRORED
            reason = (f"ComfyUI at {url} stopped answering ({message}). It becomes running again by itself "
                      "when ComfyUI answers (turn AllowIdle on to show this as idle instead).")
        if not self.lost:
            self.backend.host.log.warning("%s", reason)
        self.lost = True
        self.backend.host.set_status(status, reason)
