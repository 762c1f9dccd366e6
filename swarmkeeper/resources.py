"""What the machine the server runs on has and uses: CPU, system RAM (psutil) and NVIDIA GPUs
(NVIDIA's management library through ``nvidia-ml-py``, when it is installed and a driver answers;
SwarmUI asks ``nvidia-smi`` for the same figures). In SwarmUI's GetServerResourceInfo shape.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from types import ModuleType
from typing import Any

import psutil

from swarmkeeper.types import JSONObject

log = logging.getLogger("swarmkeeper.resources")


def cpu_and_ram() -> JSONObject:
    """``cpu.usage`` is a fraction (SwarmUI's page shows it times 100), over the time since the last
    call (psutil keeps the previous reading; the first call answers 0)."""
    memory = psutil.virtual_memory()
    return {"cpu": {"usage": psutil.cpu_percent(interval=None) / 100.0, "cores": psutil.cpu_count() or 1},
            "system_ram": {"total": memory.total, "used": memory.total - memory.available, "free": memory.available}}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def gpu_entry(nvml: Any, index: int) -> JSONObject:
    """One GPU as SwarmUI lists it (memory in bytes, utilisation and temperature as whole numbers)."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    return {"id": index, "name": _text(nvml.nvmlDeviceGetName(handle)),
            "temperature": int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            "utilization_gpu": int(rates.gpu), "utilization_memory": int(rates.memory),
            "total_memory": int(memory.total), "free_memory": int(memory.free), "used_memory": int(memory.used)}


class GPUReader:
    """NVML, initialised once on first use; without the module or a driver, no GPUs (said once in
    the log at debug level, not on every call)."""

    def __init__(self, nvml: ModuleType | Any | None = None) -> None:
        self._nvml: Any = nvml  # pynvml has no type information
        self._ready: bool | None = None

    def _start(self) -> bool:
        try:
            if self._nvml is None:
                self._nvml = importlib.import_module("pynvml")
            self._nvml.nvmlInit()
        except Exception as error:  # no nvidia-ml-py, no driver, no device: no GPUs to show
            log.debug("No NVIDIA GPU information (%s)", error)
            return False
        return True

    def read(self) -> JSONObject:
        """``{"0": {...}, "1": {...}}``, keyed by index as SwarmUI keys them; ``{}`` without NVML."""
        if self._ready is None:
            self._ready = self._start()
        if not self._ready:
            return {}
        try:
            count = self._nvml.nvmlDeviceGetCount()
            return {str(index): gpu_entry(self._nvml, index) for index in range(count)}
        except Exception as error:  # a GPU fell off the bus or the driver reloaded: show none this time
            log.warning("Reading NVIDIA GPU information failed: %s", error)
            return {}


class ResourceReader:
    def __init__(self, gpus: GPUReader | None = None) -> None:
        self.gpus = gpus or GPUReader()

    async def read(self) -> JSONObject:
        """GetServerResourceInfo's answer (NVML calls block, so they run on a worker thread)."""
        return {**cpu_and_ram(), "gpus": await asyncio.to_thread(self.gpus.read)}
