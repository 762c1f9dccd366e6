"""The script provider: SwarmUI's Auto Scaling Backend protocol, exactly.

``StartScript`` is run (in its own folder, its own session) and its stdout read line by line.
Only lines ``[SwarmAutoScaleBackend]Key: value[/SwarmAutoScaleBackend]`` count (trimmed,
case-sensitive); others are logged at debug level. Keys: ``NewURL: <url>`` (a worker is starting
there), ``DoRetries: <n>`` (before NewURL: how long it may take to answer), ``DeclareFailed:
<reason>`` (no capacity now). A script that ends without NewURL failed. After NewURL the script is
left running as long as it likes (``srun`` works), its output still read.

Beyond SwarmUI: a script that gives no NewURL within ``timeout`` seconds is stopped (its whole
process group) and counts as failed; a URL that is not http(s) fails the launch; and whatever a
launch left running is ended when the worker is released (after ``grace`` seconds to end by itself,
as a worker told to shut down does) or when the backend shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from swarmkeeper.backends.autoscale_provider import Launched, LaunchFailed, Outcome
from swarmkeeper.process.child import ChildProcess, spawn
from swarmkeeper.process.launch import LaunchError, LaunchSpec, clean_script_text

OPEN, CLOSE = "[SwarmAutoScaleBackend]", "[/SwarmAutoScaleBackend]"
#: Seconds a launch's processes get to end by themselves once their worker was released.
GRACE_SECONDS = 10.0


def protocol_line(line: str) -> tuple[str, str] | None:
    """``(key, value)`` of a protocol line, or None for any other line."""
    text = line.strip()
    if not (text.startswith(OPEN) and text.endswith(CLOSE)) or len(text) < len(OPEN) + len(CLOSE):
        return None
    key, _, value = text[len(OPEN):len(text) - len(CLOSE)].strip().partition(":")
    return key, value.strip()


def url_problem(url: str) -> str | None:
    """Why a NewURL cannot be a worker's address, or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    return None


def script_problem(raw: str) -> str | None:
    """Why ``StartScript`` cannot be run, or None."""
    text = clean_script_text(raw)
    if not text:
        return "No StartScript is set."
    path = Path(text).absolute()
    if not path.is_file():
        return f"StartScript '{text}' does not exist (looked for {path})."
    if not os.access(path, os.X_OK):
        return f"StartScript '{text}' is not executable (chmod +x it; it is run directly, as SwarmUI does)."
    return None


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass(eq=False)
class ScriptRun:
    """One run of the script, and what it left running (its process group and descendants)."""

    process: ChildProcess
    grace: float
    log: logging.Logger
    released: bool = False
    _reaper: asyncio.Task[int] | None = field(default=None, repr=False)

    def watch(self) -> None:
        self._reaper = asyncio.create_task(self.process.wait(), name=f"autoscale-script-{self.process.pid}")

    async def ended(self) -> None:
        """Until the script exited and its output was read to the end."""
        if self._reaper is not None:
            await asyncio.shield(self._reaper)

    async def release(self, grace: float | None = None) -> None:
        """Let it end by itself within ``grace`` seconds (the run's own unless given), then SIGTERM
        the group, then SIGKILL."""
        if self.released:
            return
        self.released = True
        if await self._ended_within(self.grace if grace is None else grace):
            return
        self.process.signal(signal.SIGTERM)
        if await self._ended_within(2.0):
            return
        self.log.warning("Start script run (pid %s) did not end on SIGTERM; killing it", self.process.pid)
        self.process.kill_tree()
        await self._ended_within(2.0)

    async def _ended_within(self, seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            script_done = self._reaper is None or self._reaper.done()
            if script_done and not group_alive(self.process.pid):
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        self.released = True
        self.process.kill_tree()


class ScriptProvider:
    def __init__(self, script: str, *, timeout: float, log: logging.Logger, grace: float = GRACE_SECONDS) -> None:
        self.script = clean_script_text(script)
        self.timeout = timeout
        self.log = log
        self.grace = grace
        self.runs: list[ScriptRun] = []

    def problem(self) -> str | None:
        return script_problem(self.script)

    async def start(self) -> list[tuple[int, Launched]]:
        return []  # a script's workers are not adopted across restarts

    def keeps_workers(self) -> bool:
        return False

    async def launch(self, number: int) -> Outcome:
        problem = self.problem()
        if problem is not None:
            return LaunchFailed(problem)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        try:
            process = await spawn(self._spec(number), lambda stream, line: self._line(number, stream, line, lines))
        except LaunchError as error:
            return LaunchFailed(str(error))
        run = ScriptRun(process, self.grace, self.log)
        run.watch()
        self.runs.append(run)
        ended = asyncio.create_task(self._signal_end(run, lines))
        try:
            async with asyncio.timeout(self.timeout):
                outcome = await self._read(number, run, lines)
        except TimeoutError:
            outcome = LaunchFailed(f"The start script gave no NewURL within {self.timeout:g} s; it was stopped.")
        finally:
            ended.cancel()
        if isinstance(outcome, LaunchFailed):
            await self._end_failed(run, outcome)
        return outcome

    def _spec(self, number: int) -> LaunchSpec:
        path = Path(self.script).absolute()
        return LaunchSpec(argv=(str(path),), cwd=path.parent, env=dict(os.environ), name=f"autoscale-launch-{number}")

    def _line(self, number: int, stream: str, line: str, lines: asyncio.Queue[str | None]) -> None:
        if stream == "STDOUT":
            lines.put_nowait(line)
        self.log.debug("Autoscale launch #%s %s: %s", number, stream.lower(), line)

    @staticmethod
    async def _signal_end(run: ScriptRun, lines: asyncio.Queue[str | None]) -> None:
        await run.ended()  # once its output is drained: every line is queued before the end
        lines.put_nowait(None)

    async def _read(self, number: int, run: ScriptRun, lines: asyncio.Queue[str | None]) -> Outcome:
        retries = 1
        while (line := await lines.get()) is not None:
            parsed = protocol_line(line)
            if parsed is None:
                continue
            key, value = parsed
            self.log.debug("Autoscale launch #%s says %s: %s", number, key, value)
            if key == "NewURL" and value:
                problem = url_problem(value)
                if problem is not None:
                    return LaunchFailed(f"The start script printed NewURL '{value[:200]}', {problem}.")
                return Launched(value, retries, run)
            if key == "DoRetries":
                try:
                    retries = max(int(value), 0)
                except ValueError:
                    return LaunchFailed(f"The start script printed DoRetries '{value[:200]}', not a whole number.")
            if key == "DeclareFailed":
                return LaunchFailed(f"The start script declared a failure: {value[:500]}", declared=True)
        code = run.process.returncode
        last = "; ".join(run.process.last_lines[-3:])
        return LaunchFailed(f"The start script ended (exit code {code}) without giving a NewURL"
                            + (f": {last[:500]}" if last else "."))

    async def _end_failed(self, run: ScriptRun, outcome: LaunchFailed) -> None:
        """A failed launch leaves nothing running: a script that declared failure gets the grace
        to clean up after itself; any other is sent SIGTERM at once (so a script can still cancel
        what it asked a scheduler for: a queued Slurm job outlives a SIGKILLed ``srun``), SIGKILL
        after 2 s."""
        await run.release(None if outcome.declared else 0.0)
        self.runs.remove(run)

    async def close(self) -> None:
        runs, self.runs = self.runs, []
        for run in runs:
            run.released = False
        await asyncio.gather(*(run.release() for run in runs))
        for run in runs:
            with contextlib.suppress(Exception):
                run.kill()
