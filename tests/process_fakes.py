"""Test doubles for the process supervisor: a process that obeys a script of which signals end
it, a launcher whose probe answers as told, and a clock that never waits."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swarmkeeper.process.child import LineSink
from swarmkeeper.process.launch import LaunchError, LaunchSpec
from swarmkeeper.process.states import ProcessState

_pids = itertools.count(1000)


class FakeProcess:
    """Exits when it receives one of ``dies_on`` (with -signal as its code), or on ``exit()``."""

    def __init__(self, spec: LaunchSpec, sink: LineSink, dies_on: Sequence[signal.Signals]) -> None:
        self.spec = spec
        self.sink = sink
        self.dies_on = set(dies_on)
        self.pid = next(_pids)
        self.signals: list[str] = []
        self.lines: list[str] = []
        self._code: int | None = None
        self._done = asyncio.Event()

    @property
    def returncode(self) -> int | None:
        return self._code

    @property
    def last_lines(self) -> Sequence[str]:
        return self.lines

    def write(self, line: str) -> None:
        self.lines.append(line)
        self.sink("STDERR", line)

    def exit(self, code: int) -> None:
        if self._code is None:
            self._code = code
            self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        assert self._code is not None
        return self._code

    def read_output(self) -> None:
        """Lines reach the sink as they are written: nothing to catch up on."""

    async def release(self) -> None:
        self.signals.append("RELEASED")

    def signal(self, sig: signal.Signals) -> None:
        self.signals.append(sig.name)
        if sig in self.dies_on:
            self.exit(-sig)

    def kill_tree(self) -> None:
        self.signals.append("KILL_TREE")
        self.exit(-signal.SIGKILL)


@dataclass
class FakeSpawner:
    """Spawns FakeProcesses; ``fail_with`` makes the next spawn raise LaunchError."""

    dies_on: Sequence[signal.Signals] = (signal.SIGINT,)
    spawned: list[FakeProcess] = field(default_factory=list)
    fail_with: str | None = None

    async def __call__(self, spec: LaunchSpec, sink: LineSink) -> FakeProcess:
        if self.fail_with is not None:
            raise LaunchError(self.fail_with)
        process = FakeProcess(spec, sink, self.dies_on)
        self.spawned.append(process)
        return process


class FakeLauncher:
    """A new port per launch; the probe answers True once ``ready`` is set."""

    def __init__(self) -> None:
        self.ports = itertools.count(7821)
        self.prepared: list[LaunchSpec] = []
        self.ready = asyncio.Event()
        self.probes = 0

    def prepare(self) -> LaunchSpec:
        port = next(self.ports)
        spec = LaunchSpec(argv=("comfy", "--port", str(port)), cwd=Path("/"), name="ComfyUI-0",
                          where=f"http://127.0.0.1:{port}")
        self.prepared.append(spec)
        return spec

    async def probe(self) -> bool:
        self.probes += 1
        await asyncio.sleep(0)
        return self.ready.is_set()


class FakeClock:
    """Sleeps advance time at once; ``within`` gives the awaitable a few loop turns, then times out."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    async def within(self, awaitable: Awaitable[object], seconds: float) -> bool:
        task = asyncio.ensure_future(awaitable)
        for _ in range(5):
            if task.done():
                break
            await asyncio.sleep(0)
        if task.done():
            return True
        task.cancel()
        self.waits.append(seconds)
        self.now += seconds
        return False


class StateLog:
    """Records every (state, reason) the supervisor reports."""

    def __init__(self) -> None:
        self.changes: list[tuple[ProcessState, str]] = []

    def __call__(self, state: ProcessState, reason: str) -> None:
        self.changes.append((state, reason))

    @property
    def states(self) -> list[ProcessState]:
        return [state for state, _ in self.changes]


async def poll_until(condition: Callable[[], bool], timeout: float = 20.0, every: float = 0.02) -> None:
    """Wait until ``condition()`` holds (a test's bound, not a measurement)."""
    deadline = asyncio.get_running_loop().time() + timeout
    for _ in itertools.count():
        if condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
