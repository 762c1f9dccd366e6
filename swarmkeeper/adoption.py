"""The server-wide part of keeping self-started ComfyUIs across restarts (a Feature):

- at start, the recorded processes whose backend no longer wants one (deleted, disabled, or of
  another type now) are stopped, in the background; the others wait for their backend's init,
  which adopts them (comfyui_selfstart.py, comfyui_running.py);
- at a graceful stop, SwarmUI's behaviour stays: every self-started ComfyUI is stopped, unless the
  server was started with ``--keep_backends``, which leaves them running (and recorded) for the
  next start to adopt.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from swarmkeeper.backends.comfyui_running import find, records_of, stop_leftover
from swarmkeeper.backends.comfyui_selfstart import COMFYUI_SELFSTART
from swarmkeeper.features import Feature
from swarmkeeper.metrics import AdoptionOutcome
from swarmkeeper.process.records import ProcessRecord

if TYPE_CHECKING:
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.backends")


def wanted_keys(services: Services) -> set[str]:
    """The ids of backends that would adopt a recorded process: real, enabled, self-started."""
    return {str(record.id) for record in services.registry.all()
            if record.real and record.enabled and record.type.id == COMFYUI_SELFSTART.id}


async def stop_unwanted(services: Services, unwanted: list[ProcessRecord]) -> None:
    """Stop each recorded process nobody will adopt (those that are not ours any more are left
    alone), all at once, and drop their records."""
    backend_services = services.manager.services
    policy = backend_services.tuning.restart
    records = records_of(backend_services)

    async def stop(record: ProcessRecord) -> None:
        process = find(record)
        if process is None:
            backend_services.metrics.adoption(COMFYUI_SELFSTART.id, AdoptionOutcome.FOREIGN)
        else:
            log.info("ComfyUI-%s (pid %s, port %s) was left running by an earlier start, but backend %s is gone, "
                     "disabled or of another type now: stopping it", record.key, record.pid, record.port, record.key)
            await stop_leftover(f"ComfyUI-{record.key}", record, process, policy, lambda stream, line: None)
            backend_services.metrics.adoption(COMFYUI_SELFSTART.id, AdoptionOutcome.ORPHANED)
        records.remove(record.key)

    await asyncio.gather(*(stop(record) for record in unwanted))
    await records.flush()


async def start(services: Services) -> None:
    records = records_of(services.manager.services)
    wanted = wanted_keys(services)
    unwanted = [record for record in records.all() if record.key not in wanted]
    if unwanted:
        services.manager.services.leftover_sweep = asyncio.create_task(stop_unwanted(services, unwanted),
                                                                       name="comfyui-leftovers")


async def stop(services: Services) -> None:
    backend_services = services.manager.services
    if services.config.keep_backends:
        backend_services.keep_processes = True
    sweep, backend_services.leftover_sweep = backend_services.leftover_sweep, None
    if sweep is not None:
        await sweep


ADOPTION = Feature(name="comfyui-adoption", start=start, stop=stop)
