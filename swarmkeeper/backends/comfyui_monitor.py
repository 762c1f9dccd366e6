"""The health monitor of a by-URL ComfyUI backend: ``GET /features`` every few seconds; and, for
both ComfyUI types, the device watch: ``GET /system_stats`` while the backend runs, so its GPUs'
names and memory are known (ListBackends' ``devices``, its card, /metrics).

SwarmUI runs it only with ``AllowIdle`` (unreachable means ``idle``, reachable again means
``running``). swarmkeeper runs it for every by-URL backend so its status tells the truth: without
``AllowIdle`` a ComfyUI that stops answering shows as ``errored`` (with the reason) instead of
staying ``running``. Either way it comes back by itself, and, unlike SwarmUI, re-reads
``object_info`` when it does (the ComfyUI may have been restarted with other nodes or models).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.clients.errors import ComfyError
from swarmkeeper.types import JSONObject

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


#: Seconds between two looks at the status while the backend is not running yet.
WAIT_FOR_RUNNING = 0.2


@dataclass(frozen=True)
class ComfyDevice:
    """One device of a ComfyUI's ``/system_stats`` (bytes; ``index`` is None for the CPU)."""

    name: str
    type: str
    index: int | None
    vram_total: int
    vram_free: int
    torch_vram_total: int
    torch_vram_free: int

    @property
    def vram_used(self) -> int:
        return max(0, self.vram_total - self.vram_free)

    def describe(self) -> JSONObject:
        return {"name": self.name, "type": self.type, "index": self.index, "vram_total": self.vram_total,
                "vram_free": self.vram_free, "vram_used": self.vram_used, "torch_vram_total": self.torch_vram_total,
                "torch_vram_free": self.torch_vram_free}


def _bytes(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else 0


def parse_devices(stats: JSONObject) -> tuple[ComfyDevice, ...]:
    """The devices of a ``/system_stats`` answer; entries that are not objects are skipped."""
    devices = stats.get("devices")
    if not isinstance(devices, list):
        return ()
    return tuple(
        ComfyDevice(name=str(entry.get("name", ""))[:200], type=str(entry.get("type", ""))[:40],
                    index=entry["index"] if isinstance(entry.get("index"), int) else None,
                    vram_total=_bytes(entry.get("vram_total")), vram_free=_bytes(entry.get("vram_free")),
                    torch_vram_total=_bytes(entry.get("torch_vram_total")),
                    torch_vram_free=_bytes(entry.get("torch_vram_free")))
        for entry in devices if isinstance(entry, dict))


class DeviceWatch:
    """Reads ``/system_stats`` every ``interval`` seconds while the backend is running and keeps
    its devices on the backend (a change ticks the record, so ListBackends shows it at once)."""

    def __init__(self, backend: ComfyUIBackend[Any], *, interval: float) -> None:
        self.backend = backend
        self.interval = interval

    async def run(self) -> None:
        while True:
            read = False
            try:
                read = await self.check()
            except Exception:  # a bug here must not end the watch for good
                self.backend.host.log.exception("Reading /system_stats of ComfyUI at %s failed",
                                                self.backend.api_url)
            # Until the backend runs, look again soon (no I/O), so its devices show as it comes up.
            await asyncio.sleep(self.interval if read else min(self.interval, WAIT_FOR_RUNNING))

    async def check(self) -> bool:
        """One read; False when the backend is not running (nothing asked)."""
        client = self.backend.client
        if client is None or self.backend.host.status is not BackendStatus.RUNNING:
            return False
        try:
            devices = parse_devices(await client.system_stats())
        except ComfyError:
            return True  # the health monitor (or the supervisor) reports an unreachable ComfyUI
        self.backend.set_devices(devices)
        return True
