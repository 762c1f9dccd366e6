"""The ``comfyui_selfstart`` backend type: swarmkeeper launches ComfyUI itself, on a port of its
own and the GPU(s) of ``GPU_ID``, watches it, relaunches it after a crash, and stops it without
leaving a process behind (reference §8.3, §9.3).

The process work is the supervisor's (:mod:`swarmkeeper.process`); this module only says what
to launch (:class:`ComfyLauncher`) and turns process states into statuses. Its process writes its
output to files in ``<data_dir>/ComfyUI/backend-<id>/`` and is recorded in the data folder, so a
ComfyUI that outlives the server is adopted by the next one (comfyui_running.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import psutil

from swarmkeeper.backends.base import BackendHost, BackendType
from swarmkeeper.backends.comfyui_common import ComfyUIBackend, max_usages_for
from swarmkeeper.backends.comfyui_launch import comfy_args
from swarmkeeper.backends.comfyui_running import (
    fingerprint,
    handle_for,
    keeping,
    record_of,
    records_of,
    settle,
    stop_leftover,
)
from swarmkeeper.backends.comfyui_selfstart_settings import ComfyUISelfStartSettings
from swarmkeeper.backends.comfyui_update import update_before_launch, wants_update
from swarmkeeper.backends.process_status import public_status
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.tracked import Tracked
from swarmkeeper.clients.errors import ComfyError
from swarmkeeper.exceptions import BackendConfigError
from swarmkeeper.metrics import AdoptionOutcome, RestartCause
from swarmkeeper.process.launch import LaunchError, LaunchSpec, check_start_script, clean_script_text, script_spec
from swarmkeeper.process.policy import RestartPolicy
from swarmkeeper.process.records import ProcessRecord
from swarmkeeper.process.states import ProcessState
from swarmkeeper.process.supervisor import Adoption, ProcessFailed, Supervisor
from swarmkeeper.types import JSONObject


class ComfyLauncher:
    """What the supervisor launches for one backend: a new port each time, readiness by
    ``GET /object_info`` (which also loads the model lists and features)."""

    def __init__(self, backend: ComfyUISelfStartBackend, script: Path) -> None:
        self.backend = backend
        self.script = script
        self.url = ""

    def prepare(self) -> LaunchSpec:
        port = self.backend.host.services.ports.take()
        self.backend.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.backend.temp_dir.mkdir(parents=True, exist_ok=True)
        return self.spec_for(port)

    def spec_for(self, port: int) -> LaunchSpec:
        """The launch on ``port``; LaunchError when the settings can never make a working one."""
        settings = self.backend.settings
        spec = script_spec(self.script, comfy_args(settings, port, self.backend.temp_dir),
                           gpu_id=settings.GPU_ID.strip(), name=self.backend.process_name,
                           where=f"http://127.0.0.1:{port}")
        return dataclasses.replace(spec, output_dir=self.backend.output_dir)

    async def probe(self) -> bool:
        backend = self.backend
        if backend.client is None or backend.api_url != self.url:
            await backend.connect(self.url)
        try:
            await backend.reload_object_info()
        except ComfyError:
            return False
        return True


class ComfyUISelfStartBackend(ComfyUIBackend[ComfyUISelfStartSettings]):
    #: The process's supervisor: ListBackends shows its pid (a relaunch calls _on_state).
    supervisor: Tracked[Supervisor | None] = Tracked(None)

    def __init__(self, host: BackendHost[ComfyUISelfStartSettings]) -> None:
        super().__init__(host)
        #: The port of the process now running, if any.
        self.port: int | None = None

    @property
    def process_name(self) -> str:
        return f"ComfyUI-{self.host.id}"

    @property
    def output_dir(self) -> Path:
        """This backend's folder: ComfyUI's stdout and stderr files, and its temp folder."""
        return Path(self.host.services.data_dir) / "ComfyUI" / f"backend-{self.host.id}"

    @property
    def temp_dir(self) -> Path:
        """ComfyUI's temp folder for this backend (ComfyUI empties it at every start)."""
        return self.output_dir / "temp"

    @property
    def pid(self) -> int | None:
        process = self.supervisor.process if self.supervisor is not None else None
        return process.pid if process is not None else None

    def _policy(self) -> RestartPolicy:
        """The server's stop and restart timings (BackendServices.tuning), AutoRestart as the settings say."""
        return dataclasses.replace(self.host.services.tuning.restart, auto_restart=self.settings.AutoRestart)

    # --- init ---

    async def init(self) -> None:
        settings = self.settings
        self.max_usages = max_usages_for(settings.OverQueue)
        await self._halt(graceful=True)
        leftover = await settle(self.host.services, COMFYUI_SELFSTART.id, str(self.host.id), self._fingerprint(),
                                self._policy(), self._adopted_line)
        try:
            script = self._checked_script()
        except BackendConfigError:
            await self._drop(leftover)
            raise
        if script is None:
            await self._drop(leftover)
            return
        launcher = ComfyLauncher(self, script)
        self.supervisor = Supervisor(self.process_name, launcher, on_state=self._on_state, on_line=self._on_line,
                                     policy=self._policy())
        if leftover is not None and await self._adopt(self.supervisor, launcher, *leftover):
            return
        if wants_update(settings.AutoUpdate, settings.UpdateManagedNodes):
            self.host.set_status(BackendStatus.LOADING, "Updating ComfyUI (git pull) before its launch...")
            await update_before_launch(settings.AutoUpdate, settings.UpdateManagedNodes, script.parent, self.host.log)
        await self._start(self.supervisor)

    def _checked_script(self) -> Path | None:
        """The start script, checked (None, and status disabled, when none is set); BackendConfigError
        when a launch can never work."""
        settings = self.settings
        if not clean_script_text(settings.StartScript):
            self.host.set_status(BackendStatus.DISABLED, "No start script is set: point StartScript at ComfyUI's "
                                                         "main.py.")
            return None
        try:
            script = check_start_script(settings.StartScript)
            ComfyLauncher(self, script).spec_for(0)  # a launch that can never work fails before a port is taken
        except LaunchError as error:
            raise self._config_error(str(error)) from None
        if script.name != "main.py":
            self.host.log.warning("ComfyUI start script is '%s', which looks wrong - did you forget to append "
                                  "'main.py' on the end?", script)
        return script

    async def _adopt(self, supervisor: Supervisor, launcher: ComfyLauncher, record: ProcessRecord,
                     process: psutil.Process) -> bool:
        """Take over the ComfyUI an earlier server left running for this backend (True); one that
        does not answer is stopped (False: launch a new one)."""
        services = self.host.services
        self.port, launcher.url = record.port, f"http://127.0.0.1:{record.port}"
        outcome = await supervisor.adopt(handle_for(record, process, self._adopted_line))
        if outcome is Adoption.ADOPTED:
            self.host.log.info("Self-Start %s adopted: pid %s on port %s, left running by an earlier start (its "
                               "loaded models stay loaded)", self.process_name, record.pid, record.port)
            services.metrics.adoption(COMFYUI_SELFSTART.id, AdoptionOutcome.ADOPTED)
            return True
        why = "exited" if outcome is Adoption.EXITED else "did not answer"
        self.host.log.warning("%s (pid %s), left running by an earlier start, %s: it was stopped, and a new one is "
                              "launched", self.process_name, record.pid, why)
        services.metrics.adoption(COMFYUI_SELFSTART.id, AdoptionOutcome.RELAUNCHED)
        self.port = None
        return False

    async def _drop(self, leftover: tuple[ProcessRecord, psutil.Process] | None) -> None:
        """Stop a process left for this backend that will not be adopted (it is unconfigured now)."""
        if leftover is not None:
            record, process = leftover
            await stop_leftover(self.process_name, record, process, self._policy(), self._adopted_line)
            self.host.services.metrics.adoption(COMFYUI_SELFSTART.id, AdoptionOutcome.ORPHANED)
            records = records_of(self.host.services)
            records.remove(record.key)
            await records.flush()

    def _fingerprint(self) -> str:
        return fingerprint(COMFYUI_SELFSTART.id, self.settings)

    async def _start(self, supervisor: Supervisor) -> None:
        try:
            await supervisor.start()
        except LaunchError as error:
            raise self._config_error(str(error)) from None
        except ProcessFailed as error:  # the state change logged it already
            raise BackendConfigError(error.reason) from None

    def _config_error(self, reason: str) -> BackendConfigError:
        """Errored for good (no retry), and said in the backend's own log too."""
        self.host.log.error("%s", reason)
        return BackendConfigError(reason)

    def _on_state(self, state: ProcessState, reason: str) -> None:
        self.host.set_status(public_status(state), reason)
        self.changed()  # the pid ListBackends shows may be another one now, the status unchanged
        self._record(state)
        if state is ProcessState.STARTING:
            self.host.log.info("Self-Start %s on port %s is loading...", self.process_name, self.port)
        elif state in (ProcessState.BACKOFF, ProcessState.FATAL):
            self.host.log.warning("%s", reason)
        if state is ProcessState.BACKOFF:  # it died after being ready, and AutoRestart relaunches it
            self.host.services.metrics.restarted(COMFYUI_SELFSTART.id, RestartCause.CRASH)

    def _on_line(self, name: str, stream: str, line: str) -> None:
        self.host.log.debug("[%s/%s] %s", name, stream, line)

    def _adopted_line(self, stream: str, line: str) -> None:
        self._on_line(self.process_name, stream, line)

    def _record(self, state: ProcessState) -> None:
        """Keep this backend's record of its process (comfyui_running.py) as the process goes: from
        its launch until it is gone; a process left running (DETACHED) keeps its record."""
        records = records_of(self.host.services)
        process = self.supervisor.process if self.supervisor is not None else None
        if state in (ProcessState.STARTING, ProcessState.RUNNING) and process is not None and self.port is not None:
            record = record_of(str(self.host.id), self._fingerprint(), process, self.port, self.output_dir,
                               ready=state is ProcessState.RUNNING)
            if record is not None:
                records.put(record)
        elif state in (ProcessState.STOPPED, ProcessState.FATAL, ProcessState.BACKOFF):
            records.remove(str(self.host.id))

    # --- shutdown ---

    async def shutdown(self) -> None:
        if keeping(self.host.services) and await self._detach():
            return
        await self._halt(graceful=True)

    async def _detach(self) -> bool:
        """Leave the process running for the next start to adopt (--keep_backends at program
        shutdown); False when there is none to leave."""
        supervisor = self.supervisor
        if supervisor is None or not await supervisor.detach():
            return False
        self.host.log.info("%s is left running on port %s for the next start (--keep_backends)", self.process_name,
                           self.port)
        self.supervisor = None
        await self.close()
        self.forget_object_info()
        await records_of(self.host.services).flush()
        return True

    async def kill(self) -> None:
        await self._halt(graceful=False)

    async def _halt(self, *, graceful: bool) -> None:
        await self.close()
        supervisor = self.supervisor
        if supervisor is not None:
            await (supervisor.stop() if graceful else supervisor.kill())
            await records_of(self.host.services).flush()  # its record is gone on disk too
        self.forget_object_info()
        self.port = None
        temp = self.temp_dir
        if temp.exists():
            await asyncio.to_thread(shutil.rmtree, temp, True)

    def extra_fields(self, full_data: bool) -> JSONObject:
        return {"api_url": self.api_url, "pid": self.pid, "devices": self.device_list()}


def _factory(host: BackendHost[Any]) -> ComfyUISelfStartBackend:
    return ComfyUISelfStartBackend(host)


COMFYUI_SELFSTART = BackendType(
    id="comfyui_selfstart", name="ComfyUI Self-Starting",
    description="A backend powered by a pre-existing installation of the ComfyUI, automatically launched and "
                "managed by this UI server.",
    settings_class=ComfyUISelfStartSettings, factory=_factory, fast_load=False, standard=True)
