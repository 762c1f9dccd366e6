"""Self-started ComfyUIs that outlive the server: their records on disk, and what the next server
does with each one it finds.

Every self-started ComfyUI is recorded in ``<data_dir>/backends-running.json`` (process/records.py)
from its launch until it is stopped. When swarmkeeper starts again (an upgrade, a crash, kill -9,
or a stop with ``--keep_backends``), each recorded process is first identified (process/adopted.py:
same pid, start time and command line, or it is another process and is never touched). Then:

- its backend is there, enabled, of the same type, with the same settings fingerprint: adopted
  (comfyui_selfstart.py probes it; one that does not answer is stopped and launched anew);
- its backend's settings changed while the server was down: stopped, then launched anew;
- its backend is gone, disabled, or of another type now: stopped (swarmkeeper/adoption.py).

Every recorded port is reserved in the port counter, so no other backend is given it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import psutil

from swarmkeeper.backends.base import BackendServices
from swarmkeeper.metrics import AdoptionOutcome
from swarmkeeper.process import adopted
from swarmkeeper.process.adopted import AdoptedProcess
from swarmkeeper.process.child import LineSink, ProcessHandle
from swarmkeeper.process.policy import RestartPolicy
from swarmkeeper.process.records import ProcessRecord, ProcessRecords
from swarmkeeper.process.supervisor import end_process

log = logging.getLogger("swarmkeeper.backends")

def records_of(services: BackendServices) -> ProcessRecords:
    """This server's records, read from disk on first use (their ports reserved at once)."""
    return services.process_records


def keeping(services: BackendServices) -> bool:
    """True once the program shutdown of a server started with --keep_backends has begun."""
    return services.keep_processes


def fingerprint(type_id: str, settings: Any) -> str:
    """A hash of a backend's type and settings: equal only when nothing that shapes its launch changed."""
    is_instance = dataclasses.is_dataclass(settings) and not isinstance(settings, type)
    values = dataclasses.asdict(settings) if is_instance else settings
    text = json.dumps({"type": type_id, "settings": values}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def record_of(key: str, print_: str, process: ProcessHandle, port: int, output_dir: Path | None,
              *, ready: bool) -> ProcessRecord | None:
    """A record of a live process (None if it is gone already)."""
    try:
        identity = adopted.identity_of(psutil.Process(process.pid))
    except psutil.Error:
        identity = None
    if identity is None:
        return None
    return ProcessRecord(key=key, fingerprint=print_, pid=process.pid, started=identity.started,
                         ticks=identity.ticks, cmdline=identity.cmdline, port=port, ready=ready,
                         output_dir=str(output_dir) if output_dir is not None else "")


def find(record: ProcessRecord) -> psutil.Process | None:
    """The recorded process if it still runs and is the one recorded."""
    return adopted.identify(record.pid, record.identity)


def handle_for(record: ProcessRecord, process: psutil.Process, sink: LineSink) -> AdoptedProcess:
    """Watch (and follow the output of) a recorded process, from now on."""
    return AdoptedProcess(process, sink, Path(record.output_dir) if record.output_dir else None)


async def stop_leftover(name: str, record: ProcessRecord, process: psutil.Process, policy: RestartPolicy,
                        sink: LineSink) -> None:
    """Stop a recorded process nobody adopts: the stop signal, SIGTERM, then its whole tree."""
    handle = handle_for(record, process, sink)
    await end_process(name, handle, policy, graceful=True)
    await handle.release()


async def settle(services: BackendServices, type_id: str, key: str, print_: str, policy: RestartPolicy,
                 sink: LineSink) -> tuple[ProcessRecord, psutil.Process] | None:
    """The recorded process a backend may adopt: live, ours, launched with the same settings. A
    record of a process that is gone (or not ours) is dropped; a process of ours launched with other
    settings is stopped. Its record stays until the backend's own supervisor replaces or removes it."""
    records = records_of(services)
    record = records.get(key)
    if record is None:
        return None
    process = find(record)
    if process is None:
        log.info("ComfyUI-%s: the process recorded by an earlier start (pid %s) is gone or is another process "
                 "now; it is left alone", key, record.pid)
        services.metrics.adoption(type_id, AdoptionOutcome.FOREIGN)
        records.remove(key)
        return None
    if record.fingerprint != print_:
        log.info("ComfyUI-%s (pid %s) was launched with other settings than the backend has now: stopping it",
                 key, record.pid)
        await stop_leftover(f"ComfyUI-{key}", record, process, policy, sink)
        services.metrics.adoption(type_id, AdoptionOutcome.CHANGED)
        records.remove(key)
        await records.flush()
        return None
    return record, process
