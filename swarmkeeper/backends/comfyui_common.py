"""What both ComfyUI backend types share: the connection, the init core (``GET /object_info``
into model lists and features, per backend), freeing memory, and the health monitor's switch.

Dispatch sends prompts through :meth:`ComfyUIBackend.prompt_target` (its ``api_url``, its
``client``, its ``object_info``); the attributes other parts read keep their names: ``api_url``,
``node_classes``, ``object_info``, ``models``, ``features``, ``max_usages`` and
``reload_object_info()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from swarmkeeper.backends.base import Backend, BackendHost
from swarmkeeper.backends.comfyui_info import INFO_BOOK, SWARM_CORE_NODE, ComfyInfo
from swarmkeeper.backends.comfyui_monitor import ComfyDevice, DeviceWatch, HealthMonitor
from swarmkeeper.backends.prompts import PromptTarget
from swarmkeeper.backends.tracked import Tracked
from swarmkeeper.backends.tuning import ComfyTimings
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.errors import ComfyRequestError
from swarmkeeper.types import JSONObject

S = TypeVar("S")

def max_usages_for(over_queue: int) -> int:
    """``1 + OverQueue``, never below 0 (OverQueue -1: a UI-only instance that never generates)."""
    return max(0, 1 + over_queue)


class ComfyUIBackend(Backend[S]):
    """Base of both ComfyUI types; a subclass sets ``api_url`` and calls ``reload_object_info``."""

    #: The ComfyUI base URL generation traffic goes to (with ``/api`` when EnableFrontendDev).
    api_url = Tracked("")
    #: The last parsed ``/object_info``: models and features (ListBackends shows them).
    info = Tracked(ComfyInfo())
    #: The devices ``/system_stats`` last listed (empty until read, and once disconnected).
    devices: Tracked[tuple[ComfyDevice, ...]] = Tracked(())

    def __init__(self, host: BackendHost[S]) -> None:
        super().__init__(host)
        #: The last ``/object_info`` answer, as ComfyUI sent it.
        self.object_info: Mapping[str, Any] = MappingProxyType({})
        self.client: ComfyClient | None = None
        self.monitor: HealthMonitor | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._devices_task: asyncio.Task[None] | None = None
        self._target: PromptTarget | None = None

    @property
    def timings(self) -> ComfyTimings:
        return self.host.services.tuning.comfy

    @property
    def node_classes(self) -> frozenset[str]:
        return self.info.node_classes

    @property
    def models(self) -> Mapping[str, Sequence[str]]:
        return self.info.models

    @property
    def features(self) -> frozenset[str]:
        return self.info.features

    # --- connection ---

    async def connect(self, api_url: str) -> ComfyClient:
        """Talk to ``api_url`` from now on (ValueError if it is not an http(s) URL)."""
        client = ComfyClient(api_url, timeout=self.timings.timeout)
        await self.disconnect()
        self.client, self.api_url = client, client.address.url
        watch = DeviceWatch(self, interval=self.timings.devices_interval)
        self._devices_task = asyncio.create_task(watch.run(), name=f"comfyui-devices-{self.host.id}")
        return client

    async def disconnect(self) -> None:
        client, self.client = self.client, None
        task, self._devices_task = self._devices_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.set_devices(())
        if client is not None:
            await client.aclose()

    def set_devices(self, devices: tuple[ComfyDevice, ...]) -> None:
        if devices != self.devices:
            self.devices = devices
            self.host.changed()

    def prompt_target(self) -> PromptTarget:
        """Prompts go to ``api_url`` through ``client``; what it runs is its ``object_info``."""
        target = self._target
        if target is None or target.address != self.api_url:
            target = PromptTarget(f"{self.host.id}@{self.api_url}", self.api_url, lambda: self.client,
                                  lambda: self.object_info)
            self._target = target  # a cache: not a change the API shows
        return target

    def _client(self) -> ComfyClient:
        if self.client is None:
            raise RuntimeError("ComfyUI backend is not connected")
        return self.client

    # --- the init core ---

    async def reload_object_info(self) -> None:
        """Re-read ``GET /object_info``: node classes, model lists, features. Raises ComfyError."""
        object_info, info = INFO_BOOK.intern(await self._client().object_info())
        if not info.has_swarm_nodes and not self.info.node_classes:
            self.host.log.warning("ComfyUI at %s is missing the Swarm core nodes (%s): SwarmUI's own "
                                  "workflows will not run on it", self.api_url, SWARM_CORE_NODE)
        self.object_info = object_info
        self.info = info

    async def refresh_models(self) -> None:
        """TriggerRefresh: the model lists come from ``object_info``, so re-read it."""
        await self.reload_object_info()

    def forget_object_info(self) -> None:
        self.object_info = MappingProxyType({})
        self.info = ComfyInfo()

    # --- memory ---

    async def free_memory(self, system_ram: bool) -> bool:
        """``POST /free``; True when ComfyUI took it (it acts between prompts; the model it held is
        gone then). Raises ComfyError when it could not be asked, or refused with a server error."""
        try:
            await self._client().free(unload_models=True, free_memory=system_ram)
        except ComfyRequestError as error:
            if error.status >= 500:
                raise
            return False
        self.current_model = None
        return True

    # --- health monitor ---

    def start_monitor(self, *, allow_idle: bool, lost_reason: str | None = None) -> None:
        """Watch the connection from now on (a by-URL backend), optionally starting as lost."""
        self.monitor = HealthMonitor(self, allow_idle=allow_idle, interval=self.timings.monitor_interval)
        if lost_reason is not None:
            self.monitor.lose(lost_reason)
        self._monitor_task = asyncio.create_task(self.monitor.run(), name=f"comfyui-monitor-{self.host.id}")

    async def stop_monitor(self) -> None:
        task, self._monitor_task = self._monitor_task, None
        self.monitor = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """What both types' shutdowns do first: stop watching, drop the connection."""
        await self.stop_monitor()
        await self.disconnect()

    def extra_fields(self, full_data: bool) -> JSONObject:
        return {"api_url": self.api_url, "devices": self.device_list()}

    def device_list(self) -> list[JSONObject]:
        """(swarmkeeper) ListBackends' ``devices``: each device of ``/system_stats``, in bytes."""
        return [device.describe() for device in self.devices]
