"""Which supervised processes a server has running, on disk, so the next server can adopt them.

One JSON file (``<data_dir>/backends-running.json``), written atomically (files.py) after each
change. Each record is keyed by its owner's key (a backend id) and carries the owner's settings
fingerprint, so an owner whose settings changed is never matched to a stale process, and what
identifies the process itself (pid, start time, command line), so a process that took a recorded
pid after ours ended is never taken for ours::

    {"version": 1, "processes": {"3": {"fingerprint": "9f2c...", "pid": 4242, "started": 1718000000.25,
      "ticks": 81234567, "cmdline": ["/usr/bin/python3", "-s", "main.py", "--port", "7821"], "port": 7821,
      "ready": true, "output_dir": "Data/ComfyUI/backend-3"}}}
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swarmkeeper.files import read_text, write_atomic
from swarmkeeper.process.adopted import Identity

log = logging.getLogger("swarmkeeper.process")
VERSION = 1


@dataclass(frozen=True)
class ProcessRecord:
    key: str
    #: The owner's settings, hashed: a process launched with other settings is not adopted.
    fingerprint: str
    pid: int
    #: Its start time (psutil's create_time, and clock ticks since boot where there is /proc) and
    #: its command line, as seen when it was recorded (adopted.py: Identity).
    started: float
    ticks: int | None
    cmdline: tuple[str, ...]
    port: int
    #: True once it answered its readiness probe (False: it was still starting).
    ready: bool
    #: Where its stdout and stderr files are ("" if it writes to pipes).
    output_dir: str = ""

    @property
    def identity(self) -> Identity:
        return Identity(self.started, self.ticks, self.cmdline)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["key"]
        data["cmdline"] = list(self.cmdline)
        return data

    @classmethod
    def from_json(cls, key: str, data: Any) -> ProcessRecord:
        """Raises ValueError (or TypeError, KeyError) for an entry that is not a record."""
        if not isinstance(data, dict) or not isinstance(data.get("cmdline"), list):
            raise ValueError("not a process record")
        ticks = data.get("ticks")
        return cls(key=key, fingerprint=str(data["fingerprint"]), pid=int(data["pid"]),
                   started=float(data["started"]), ticks=int(ticks) if ticks is not None else None,
                   cmdline=tuple(str(part) for part in data["cmdline"]),
                   port=int(data["port"]), ready=bool(data["ready"]), output_dir=str(data.get("output_dir", "")))


def parse(text: str) -> dict[str, ProcessRecord]:
    """The records of a file's text; entries that do not read are left out, with a warning."""
    data = json.loads(text)
    entries = data.get("processes") if isinstance(data, dict) else None
    records: dict[str, ProcessRecord] = {}
    for key, entry in (entries or {}).items():
        try:
            records[key] = ProcessRecord.from_json(key, entry)
        except (ValueError, TypeError, KeyError) as error:
            log.warning("Running-process record '%s' cannot be read (%s); ignored", key, error)
    return records


class ProcessRecords:
    """The file, and the records in memory. Changes are written in the background, coalesced;
    :meth:`flush` returns once every change made before it is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records = self._load()
        self._lock = asyncio.Lock()
        self._version = 0  # changes made
        self._written = 0  # changes on disk
        self._writes: set[asyncio.Task[None]] = set()

    def _load(self) -> dict[str, ProcessRecord]:
        try:
            text = read_text(self.path)
            return parse(text) if text is not None else {}
        except (OSError, ValueError) as error:
            log.error("Running-process records %s cannot be read (%s): no process will be adopted", self.path, error)
            return {}

    def get(self, key: str) -> ProcessRecord | None:
        return self._records.get(key)

    def all(self) -> list[ProcessRecord]:
        return list(self._records.values())

    def put(self, record: ProcessRecord) -> None:
        if self._records.get(record.key) != record:
            self._records[record.key] = record
            self._changed()

    def remove(self, key: str) -> None:
        if self._records.pop(key, None) is not None:
            self._changed()

    def _changed(self) -> None:
        self._version += 1
        task = asyncio.get_running_loop().create_task(self.flush(), name="process-records-write")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def render(self) -> str:
        processes = {key: record.to_json() for key, record in sorted(self._records.items())}
        return json.dumps({"version": VERSION, "processes": processes}, indent=1) + "\n"

    async def flush(self) -> None:
        """Until the records as they are now are on disk (one write serves every change before it)."""
        wanted = self._version
        async with self._lock:
            if self._written >= wanted:
                return
            version, text = self._version, self.render()
            try:
                await asyncio.to_thread(write_atomic, self.path, text)
            except OSError as error:
                log.error("Running-process records %s could not be written: %s", self.path, error)
                return
            self._written = version
