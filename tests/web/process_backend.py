"""A backend type for the web tests whose init starts a real child process and which notices when
that process dies, as a self-starting backend does: killing the process from outside (SIGKILL)
must turn the backend ``errored`` with a reason, and the page must show it at once.

Load it with ``--backend_types tests.web.process_backend``. ListBackends shows the child's ``pid``.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.base import Backend, BackendType
from swarmkeeper.backends.settings import integer
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.tracked import Tracked
from swarmkeeper.types import JSONObject


@dataclass(frozen=True)
class ProcessSettings:
    Seconds: int = integer(3600, "How long the child process lives, in seconds.")


def exit_text(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class ProcessBackend(Backend[ProcessSettings]):
    #: Its pid is shown in ListBackends.
    process: Tracked[asyncio.subprocess.Process | None] = Tracked(None)

    def __init__(self, host: Any) -> None:
        super().__init__(host)
        self.watcher: asyncio.Task[None] | None = None

    async def init(self) -> None:
        self.host.set_status(BackendStatus.LOADING, "Starting the process...")
        self.process = await asyncio.create_subprocess_exec("sleep", str(self.settings.Seconds))
        self.watcher = asyncio.create_task(self._watch(self.process))
        self.host.set_status(BackendStatus.RUNNING, "")

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self.process is process:  # nobody asked it to stop
            self.process = None
            self.host.log.error("The process %s died: %s", process.pid, exit_text(code))
            self.host.set_status(BackendStatus.ERRORED, f"The process exited unexpectedly ({exit_text(code)}).")

    async def shutdown(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        if self.watcher is not None:
            self.watcher.cancel()
            self.watcher = None

    async def free_memory(self, system_ram: bool) -> bool:
        return True

    def extra_fields(self, full_data: bool) -> JSONObject:
        return {"pid": self.process.pid if self.process is not None else None}


PROCESS = BackendType(id="test_process", name="Process (tests)", description="Runs a child process that may die.",
                      settings_class=ProcessSettings, factory=ProcessBackend, fast_load=True, standard=True)

BACKEND_TYPES = [PROCESS]
