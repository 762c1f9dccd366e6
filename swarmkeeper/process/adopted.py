"""A live process that an earlier server started: found again, checked to be the very process
that was recorded, and watched without being its parent.

A process that is not our child cannot be waited for: its end is noticed through a pidfd (Linux
5.3 and later; the descriptor stays bound to that one process even if its pid is reused) or, where
there is none, by asking psutil every :data:`POLL_SECONDS`. Its exit code cannot be known. Its
output is followed in the files it was launched with (output.py), from the moment it is adopted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from swarmkeeper.process import tree
from swarmkeeper.process.child import LinePump, LineSink
from swarmkeeper.process.output import OutputFollower

#: Seconds between two looks at a process when there is no pidfd.
POLL_SECONDS = 1.0
#: Where the kernel says when a process started, in clock ticks since boot (Linux).
PROC = Path("/proc")
#: Without /proc, psutil's start times (seconds) must agree this closely.
START_TOLERANCE = 0.01


@dataclass(frozen=True)
class Identity:
    """What tells one process from any other that later gets its pid."""

    #: psutil's create_time (seconds since the epoch, derived from the boot time, which moves when
    #: the wall clock is stepped: a check only where there is no /proc, and for people).
    started: float
    #: The start in clock ticks since boot, from /proc/<pid>/stat: exact, and immune to clock
    #: changes. None where there is no /proc.
    ticks: int | None
    cmdline: tuple[str, ...]

    def matches(self, other: Identity) -> bool:
        if self.cmdline != other.cmdline:
            return False
        if self.ticks is not None and other.ticks is not None:
            return self.ticks == other.ticks
        return abs(self.started - other.started) <= START_TOLERANCE


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (read after the command name, which may hold spaces and ``)``)."""
    try:
        stat = (PROC / str(pid) / "stat").read_bytes()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def identity_of(process: psutil.Process) -> Identity | None:
    """The identity of a live process (None if it is gone, or a zombie)."""
    try:
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return Identity(process.create_time(), start_ticks(process.pid), tuple(process.cmdline()))
    except psutil.Error:
        return None


def identify(pid: int, recorded: Identity) -> psutil.Process | None:
    """The live process with this pid if it is the one recorded; None if it is gone, a zombie, or
    another process that took the pid (it started at another moment, or runs another command line)."""
    try:
        process = psutil.Process(pid)
    except psutil.Error:
        return None
    found = identity_of(process)
    return process if found is not None and found.matches(recorded) else None


class AdoptedProcess:
    """A :class:`~swarmkeeper.process.child.ProcessHandle` for a process we did not start."""

    def __init__(self, process: psutil.Process, sink: LineSink, output_dir: Path | None,
                 tail_size: int = 40) -> None:
        self._process = process
        self._known: list[psutil.Process] = tree.members(process.pid)
        self._stderr: collections.deque[str] = collections.deque(maxlen=tail_size)
        self._stdout: collections.deque[str] = collections.deque(maxlen=tail_size)
        pumps = {"STDOUT": LinePump("STDOUT", sink, self._stdout), "STDERR": LinePump("STDERR", sink, self._stderr)}
        self._follower = OutputFollower(output_dir, pumps, from_end=True) if output_dir is not None else None
        self._gone = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch(), name=f"adopted-{process.pid}")

    @property
    def pid(self) -> int:
        pid: int = self._process.pid
        return pid

    @property
    def returncode(self) -> int | None:
        return None  # not our child: its exit code is never known

    @property
    def last_lines(self) -> Sequence[str]:
        return list(self._stderr or self._stdout)

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    async def wait(self) -> None:
        await self._gone.wait()
        if self._follower is not None:
            await self._follower.stop()

    def read_output(self) -> None:
        if self._follower is not None:
            self._follower.catch_up()

    # --- noticing its end ---

    def _alive(self) -> bool:
        return bool(tree.alive([self._process]))  # psutil checks the start time: a reused pid is not alive

    async def _watch(self) -> None:
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfds here, or it is gone already
            pidfd = None
        try:
            if pidfd is not None and self._alive():
                await self._readable(pidfd)
            await self._poll_until_gone()
        finally:
            if pidfd is not None:
                os.close(pidfd)
            self._gone.set()

    async def _poll_until_gone(self) -> None:
        """Without a pidfd there is no event to wait for: ask psutil now and then."""
        while True:
            if not self._alive():
                return
            await asyncio.sleep(POLL_SECONDS)

    @staticmethod
    async def _readable(fd: int) -> None:
        """Until a pidfd says its process ended."""
        loop = asyncio.get_running_loop()
        ended = loop.create_future()

        def end() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(fd, end)
        try:
            await ended
        finally:
            loop.remove_reader(fd)

    # --- signals ---

    def signal(self, sig: signal.Signals) -> None:
        """To its process group (it leads one: it was started in a session of its own)."""
        if not self.gone and self._alive():
            self._remember_descendants()
            tree.signal_group(self.pid, sig)

    def kill_tree(self) -> None:
        if not self.gone and self._alive():
            self._remember_descendants()
            tree.signal_group(self.pid, signal.SIGKILL)
        tree.kill(self._known)  # psutil refuses to signal a process whose pid was reused

    def _remember_descendants(self) -> None:
        seen = {p.pid for p in self._known}
        self._known += [p for p in tree.members(self.pid) if p.pid not in seen]

    async def release(self) -> None:
        """Stop watching it and reading its output (it keeps running)."""
        self._watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watcher
        if self._follower is not None:
            await self._follower.stop()
