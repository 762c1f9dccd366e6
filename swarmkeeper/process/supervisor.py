"""One supervised process at a time, for one owner: launch it and wait until it answers, watch it,
relaunch it after a crash as the policy says, and stop it without leaving anything behind.

The supervisor is the only writer of its :class:`ProcessState` (:meth:`Supervisor._set` checks
each transition against :data:`~swarmkeeper.process.states.TRANSITIONS` and tells the owner).
What to launch and how to tell it is ready belong to the owner, through :class:`Launcher`:
``prepare()`` is called for every launch (so a relaunch can take a new port), ``probe()`` until it
returns True.

A process that an earlier server started and left running can be taken over with :meth:`adopt`
(probed, then watched as if launched here), and a running one left for a later server with
:meth:`detach`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Protocol

from swarmkeeper.process import child
from swarmkeeper.process.child import LineSink, ProcessHandle, Spawner
from swarmkeeper.process.clock import REAL_CLOCK, Clock
from swarmkeeper.process.launch import LaunchError, LaunchSpec
from swarmkeeper.process.policy import ExitDecision, RestartPolicy, decide
from swarmkeeper.process.states import ProcessState, check_transition

S = ProcessState
log = logging.getLogger("swarmkeeper.process")
#: Seconds to wait for a killed process to be reaped.
REAP_SECONDS = 5.0
#: Stderr lines quoted in a failure reason, and the longest such quote.
REASON_LINES = 6
REASON_CHARS = 700


class Launcher(Protocol):
    def prepare(self) -> LaunchSpec:
        """What to run this time (raise LaunchError when it can never work)."""
        ...

    async def probe(self) -> bool:
        """One readiness check: True once the process answers."""
        ...


class ProcessFailed(Exception):
    """The process exited before it was ready; ``reason`` quotes its last output lines."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Adoption(StrEnum):
    """How taking over a process left by an earlier server went."""

    ADOPTED = "adopted"  # it answered: running, and watched from now on
    EXITED = "exited"  # it ended before it answered (what it left behind was stopped)
    SILENT = "silent"  # it did not answer within adopt_wait: stopped, its whole tree


#: ``listener(state, reason)``, called on every state change.
StateListener = Callable[[ProcessState, str], None]
#: ``on_line(name, stream, line)`` for every output line of the process.
OutputListener = Callable[[str, str, str], None]


def describe_exit(code: int | None) -> str:
    """``exited with code 1``, or ``was killed by SIGKILL`` for a negative code (``exited`` when
    the code cannot be known: an adopted process is not our child)."""
    if code is None:
        return "exited"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def exit_reason(name: str, code: int | None, lines: Sequence[str], *, ready: bool) -> str:
    """A status reason for an exit, quoting the last lines the process wrote."""
    when = "unexpectedly" if ready else "before it was ready"
    tail = " | ".join(line.strip() for line in lines[-REASON_LINES:])
    if len(tail) > REASON_CHARS:
        tail = "..." + tail[-REASON_CHARS:]
    return f"{name} {describe_exit(code)} {when}" + (f": {tail}" if tail else " (it wrote nothing).")


class Supervisor:
    def __init__(self, name: str, launcher: Launcher, *, on_state: StateListener,
                 on_line: OutputListener | None = None, policy: RestartPolicy | None = None,
                 spawn: Spawner = child.spawn, clock: Clock = REAL_CLOCK) -> None:
        self.name = name
        self.launcher = launcher
        self.policy = policy or RestartPolicy()
        self.on_state = on_state
        self.on_line = on_line
        self.spawn = spawn
        self.clock = clock
        self.state = S.STOPPED
        self.reason = ""
        #: The process now running (or starting), if any.
        self.process: ProcessHandle | None = None
        #: How many times a process was spawned, relaunches included.
        self.launches = 0
        self._watcher: asyncio.Task[None] | None = None
        self._halting: asyncio.Task[None] | None = None
        self._dying: ProcessHandle | None = None

    # --- the one writer of the state ---

    def _still(self, state: ProcessState) -> bool:
        """Whether the state is still ``state`` after an await, during which another task may have
        changed it (a method, so the type checker does not keep what it knew before the await)."""
        return self.state is state

    def _set(self, state: ProcessState, reason: str) -> None:
        why = check_transition(self.state, state)
        self.state, self.reason = state, reason
        log.debug("%s: %s (%s)", self.name, state, why)
        self.on_state(state, reason)

    # --- starting ---

    async def start(self) -> None:
        """Launch, wait until the probe succeeds, then watch the process in the background.

        Raises LaunchError (nothing was started) or ProcessFailed (it exited before it was ready;
        the state is then FATAL).
        """
        if self.state not in (S.STOPPED, S.FATAL):
            raise RuntimeError(f"{self.name} is already {self.state}")
        await self._launch_until_ready()
        self._watcher = asyncio.create_task(self._watch(), name=f"watch-{self.name}")

    def _sink(self, spec: LaunchSpec) -> LineSink:
        on_line = self.on_line
        if on_line is None:
            return lambda stream, line: None
        return lambda stream, line: on_line(spec.name, stream, line)

    async def _launch_until_ready(self) -> None:
        spec = self.launcher.prepare()
        process = await self.spawn(spec, self._sink(spec))
        self.process = process
        self.launches += 1
        where = f" at {spec.where}" if spec.where else ""
        self._set(S.STARTING, f"{spec.name} is starting{where} (pid {process.pid}); waiting for it to answer...")
        exited = asyncio.create_task(process.wait())
        try:
            await self._until_ready(exited)
        finally:
            exited.cancel()
        if self.state is not S.STARTING:  # stopped meanwhile (by another task)
            raise ProcessFailed(f"{spec.name} was stopped while it started.")
        if exited.done() and not exited.cancelled():
            await self._failed_start(spec, process, exited.result())
        process.read_output()  # what it said while starting is in its log before it shows running
        self._set(S.RUNNING, "")

    async def _until_ready(self, exited: asyncio.Task[int | None]) -> None:
        """Probe until it answers, or return early when the process exits."""
        while not exited.done():
            if await self._probe_unless_exited(exited):
                return
            await self.clock.within(asyncio.shield(exited), self.policy.probe_interval)

    async def _probe_unless_exited(self, exited: asyncio.Task[int | None]) -> bool:
        """One probe, abandoned if the process exits first."""
        probe = asyncio.create_task(self.launcher.probe())
        try:
            await asyncio.wait({probe, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not probe.done():
                probe.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await probe
        return not exited.done() and not probe.cancelled() and probe.result()

    async def _failed_start(self, spec: LaunchSpec, process: ProcessHandle, code: int | None) -> None:
        process.kill_tree()  # whatever it started before dying
        self.process = None
        reason = exit_reason(spec.name, code, process.last_lines, ready=False)
        self._set(S.FATAL, reason)
        raise ProcessFailed(reason)

    # --- adopting a process an earlier server started, and leaving one for a later server ---

    async def adopt(self, process: ProcessHandle) -> Adoption:
        """Take over ``process``, left running by an earlier server: give it the policy's
        ``adopt_wait`` to answer its probe. ADOPTED: it is RUNNING, watched from now on.
        Otherwise it was stopped (its whole tree), and the state is STOPPED, ready for start()."""
        if self.state is not S.STOPPED:
            raise RuntimeError(f"{self.name} is already {self.state}")
        self.process = process
        self._set(S.ADOPTING, f"{self.name} (pid {process.pid}) was left running by an earlier start; "
                              "waiting for it to answer...")
        exited = asyncio.create_task(process.wait())
        try:
            answered = await self.clock.within(self._until_ready(exited), self.policy.adopt_wait)
            outcome = Adoption.EXITED if exited.done() else Adoption.ADOPTED if answered else Adoption.SILENT
        finally:
            exited.cancel()
        if not self._still(S.ADOPTING):  # stopped meanwhile (by another task)
            await self._halt(graceful=True)
            raise ProcessFailed(f"{self.name} was stopped while it was adopted.")
        if outcome is Adoption.ADOPTED:
            process.read_output()
            self._set(S.RUNNING, "")
            self._watcher = asyncio.create_task(self._watch(), name=f"watch-{self.name}")
            return outcome
        log.warning("%s (pid %s), left running by an earlier start, %s: stopping it", self.name, process.pid,
                    "exited" if outcome is Adoption.EXITED else f"did not answer within {self.policy.adopt_wait:g} s")
        await self._halt(graceful=True)
        return outcome

    async def detach(self) -> bool:
        """Leave the process running for a later server to adopt: stop watching it and reading its
        output. False (and nothing changed) when no live process is there to leave."""
        process = self.process
        if self.state not in (S.STARTING, S.RUNNING, S.ADOPTING) or process is None or process.returncode is not None:
            return False
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self.process = None
        await process.release()
        self._set(S.DETACHED, f"{self.name} (pid {process.pid}) is left running for the next start.")
        return True

    # --- watching (noticing an exit), then deciding ---

    async def _watch(self) -> None:
        while (process := self.process) is not None:
            code = await process.wait()
            decision = decide(self.policy, stopping=self.state in (S.STOPPING, S.STOPPED), was_ready=True)
            if decision is ExitDecision.EXPECTED:
                return
            process.kill_tree()  # children that outlived it
            reason = exit_reason(self.name, code, process.last_lines, ready=True)
            log.warning("%s", reason)
            if decision is ExitDecision.FAIL:
                self.process = None
                self._set(S.FATAL, reason)
                return
            await self._relaunch(reason)

    async def _relaunch(self, reason: str) -> None:
        delay = self.policy.restart_delay
        self._set(S.BACKOFF, f"{reason} Restarting in {delay:g} s (AutoRestart).")
        await self.clock.sleep(delay)
        try:
            await self._launch_until_ready()
        except ProcessFailed:
            pass  # FATAL already, with the reason
        except LaunchError as error:
            self.process = None
            self._set(S.FATAL, str(error))

    # --- stopping ---

    async def stop(self) -> None:
        """Stop gracefully: the stop signal, then SIGTERM, then kill the whole tree."""
        await self._halt(graceful=True)

    async def kill(self) -> None:
        """Kill the whole process tree at once (a stop already under way is cut short)."""
        await self._halt(graceful=False)

    async def _halt(self, *, graceful: bool) -> None:
        if self._halting is None or self._halting.done():
            if self.state is S.STOPPED and self.process is None:
                return
            self._halting = asyncio.create_task(self._do_halt(graceful), name=f"stop-{self.name}")
        elif not graceful and self._dying is not None:
            self._dying.kill_tree()
        await asyncio.shield(self._halting)  # a cancelled caller must not leave it half-stopped

    async def _do_halt(self, graceful: bool) -> None:
        self._set(S.STOPPING, f"{self.name} is stopping...")
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        process, self.process = self.process, None
        if process is not None:
            self._dying = process
            try:
                await self._end(process, graceful)
            finally:
                self._dying = None
        self._set(S.STOPPED, f"{self.name} is stopped.")

    async def _end(self, process: ProcessHandle, graceful: bool) -> None:
        await end_process(self.name, process, self.policy, graceful=graceful, clock=self.clock)


async def end_process(name: str, process: ProcessHandle, policy: RestartPolicy, *, graceful: bool,
                      clock: Clock = REAL_CLOCK) -> None:
    """The stop sequence: the stop signal, then SIGTERM (each with its wait), then kill the tree."""
    if graceful and process.returncode is None:
        for sig, wait in ((policy.stop_signal, policy.stop_wait), (signal.SIGTERM, policy.term_wait)):
            process.signal(sig)
            if await clock.within(process.wait(), wait):
                break
            log.info("%s did not stop within %g s of %s", name, wait, sig.name)
    process.kill_tree()  # the process if it still runs, and anything it left behind
    if not await clock.within(process.wait(), REAP_SECONDS):
        log.error("%s (pid %s) survived SIGKILL", name, process.pid)
