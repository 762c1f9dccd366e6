"""What the pool says about itself, as one ComfyUI would: the union of its backends' answers."""

from __future__ import annotations

import asyncio
import platform
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import psutil

from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.errors import ComfyError
from swarmkeeper.dispatch.targets import Target

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool

JSONObject = dict[str, Any]
T = TypeVar("T")
#: Seconds one backend may take to answer an information call.
INFO_TIMEOUT = 10.0


def running_targets(pool: Pool, pin: int | None = None) -> list[Target]:
    targets = []
    for record in pool.registry.all():
        if record.status is not BackendStatus.RUNNING or not record.enabled:
            continue
        if pin is not None and pin not in (record.id, record.parent.id if record.parent else None):
            continue
        target = pool.targets.of(record)
        if target is not None:
            targets.append(target)
    return targets


async def ask_all(targets: list[Target], call: Callable[[ComfyClient], Awaitable[T]]) -> list[T | BaseException]:
    async def one(target: Target) -> T:
        async with asyncio.timeout(INFO_TIMEOUT):
            return await call(target.client())

    return await asyncio.gather(*(one(target) for target in targets), return_exceptions=True)


def object_info(pool: Pool, pin: int | None, node_class: str | None) -> JSONObject:
    if pin is not None:
        record = pool.registry.get(pin)
        found = pool.targets.info_of(record) if record is not None else {}
        info: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    else:
        info = pool.union_info()
    if node_class is None:
        return dict(info)
    return {node_class: info[node_class]} if node_class in info else {}


async def system_stats(pool: Pool, pin: int | None) -> JSONObject:
    """The first backend's ``system``, and every backend's devices (named after their backend)."""
    targets = running_targets(pool, pin)
    answers = await ask_all(targets, lambda client: client.system_stats())
    system: JSONObject | None = None
    devices: list[Any] = []
    for target, answer in zip(targets, answers, strict=True):
        if isinstance(answer, BaseException):
            continue
        system = system or answer.get("system")
        for device in answer.get("devices") or []:
            if isinstance(device, dict):
                devices.append({**device, "name": f"backend #{target.record.id}: {device.get('name', '')}"})
    return {"system": system or own_system(), "devices": devices}


def own_system() -> JSONObject:
    """A ``system`` block describing this server, when no backend answers."""
    memory = psutil.virtual_memory()
    return {"os": "posix" if sys.platform != "win32" else "nt", "ram_total": memory.total, "ram_free": memory.available,
            "comfyui_version": "", "python_version": sys.version, "pytorch_version": "", "embedded_python": False,
            "argv": [], "platform": platform.platform()}


async def models(pool: Pool, pin: int | None, folder: str | None) -> list[Any] | None:
    """``/models`` (folder names) or ``/models/<folder>``; None when no backend knows the folder."""
    targets = running_targets(pool, pin)
    answers = await ask_all(targets, lambda client: client.models(folder))
    merged: dict[Any, None] = {}
    known = False
    for answer in answers:
        if isinstance(answer, BaseException):
            continue
        known = True
        merged.update(dict.fromkeys(item for item in answer if isinstance(item, (str, int, float))))
    return list(merged) if known or folder is None else None


async def features(pool: Pool) -> JSONObject:
    return dict(pool.relay.server_features)


async def free(pool: Pool, body: Any) -> None:
    """``POST /free``: passed to every running backend."""
    flags = body if isinstance(body, dict) else {}
    targets = running_targets(pool)
    await ask_all(targets, lambda client: client.free(unload_models=bool(flags.get("unload_models")),
                                                      free_memory=bool(flags.get("free_memory"))))


__all__ = ["ComfyError", "features", "free", "models", "object_info", "system_stats"]
