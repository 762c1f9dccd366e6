"""A real child process: spawned in a session of its own with SIGINT restored, its stdout and
stderr read line by line into a sink (from pipes, or from files when the launch names an output
folder: see output.py), the last stderr lines kept for the failure reason."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

import psutil

from swarmkeeper.process import tree
from swarmkeeper.process.launch import LaunchError, LaunchSpec
from swarmkeeper.process.output import OutputFollower, open_for_child

#: ``sink(stream, line)``: stream is ``STDOUT`` or ``STDERR``.
LineSink = Callable[[str, str], None]
#: Longest line kept (a progress bar without newlines must not grow without end).
MAX_LINE = 8192
#: Seconds the output readers may take to finish after the process exited (a grandchild that
#: kept the pipes open must not hold us up).
DRAIN_SECONDS = 1.0


class ProcessHandle(Protocol):
    """What the supervisor needs of a running process (a fake one implements it in tests)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def last_lines(self) -> Sequence[str]:
        """The last lines it wrote to stderr (or stdout when stderr said nothing)."""
        ...

    async def wait(self) -> int | None:
        """Until it exits; its exit code (None when it cannot be known: not our child)."""
        ...

    def read_output(self) -> None:
        """Take in the output it wrote so far, now (before a state change that quotes it)."""
        ...

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to its process group."""
        ...

    async def release(self) -> None:
        """Stop reading its output: it is left running for a later server to adopt."""
        ...

    def kill_tree(self) -> None:
        """SIGKILL it and every descendant."""
        ...


Spawner = Callable[[LaunchSpec, LineSink], Awaitable[ProcessHandle]]


def _restore_sigint() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A server started in the background inherits SIGINT ignored, and an ignored signal stays
    ignored across exec: reset it so SIGINT stops the child (SwarmUI's first stop signal)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LinePump:
    """Splits a stream into lines (``\\n`` or ``\\r``) and hands each non-blank one to the sink."""

    def __init__(self, stream: str, sink: LineSink, tail: collections.deque[str]) -> None:
        self.stream = stream
        self.sink = sink
        self.tail = tail
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        data = (self._pending + chunk).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._pending = data.split(b"\n")
        if len(self._pending) > MAX_LINE:
            lines.append(self._pending)
            self._pending = b""
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""

    def _emit(self, raw: bytes) -> None:
        text = raw[:MAX_LINE].decode(errors="replace").rstrip()
        if text.strip():
            self.tail.append(text)
            self.sink(self.stream, text)

    async def run(self, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(65536):
                self.feed(chunk)
        finally:
            self.close()


class ChildProcess:
    """A process spawned by :func:`spawn`."""

    def __init__(self, process: asyncio.subprocess.Process, sink: LineSink, tail_size: int = 40,
                 output_dir: Path | None = None) -> None:
        self._process = process
        self._stderr: collections.deque[str] = collections.deque(maxlen=tail_size)
        self._stdout: collections.deque[str] = collections.deque(maxlen=tail_size)
        pumps = {"STDOUT": LinePump("STDOUT", sink, self._stdout), "STDERR": LinePump("STDERR", sink, self._stderr)}
        self._pumps: list[asyncio.Task[None]] = []
        self._follower: OutputFollower | None = None
        if output_dir is not None:
            self._follower = OutputFollower(output_dir, pumps, from_end=False)
        else:
            assert process.stdout is not None and process.stderr is not None
            self._pumps = [asyncio.create_task(pumps["STDOUT"].run(process.stdout)),
                           asyncio.create_task(pumps["STDERR"].run(process.stderr))]
        self._known: list[psutil.Process] = tree.members(process.pid)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    @property
    def last_lines(self) -> Sequence[str]:
        return list(self._stderr or self._stdout)

    async def wait(self) -> int:
        code = await self._process.wait()
        if self._follower is not None:
            await self._follower.stop()
        await self._drain()
        return code

    def read_output(self) -> None:
        if self._follower is not None:
            self._follower.catch_up()

    async def release(self) -> None:
        # The asyncio transport would kill a child it still owns if it were closed; nothing closes
        # it, and the loop's child watcher holds it until the child exits.
        if self._follower is not None:
            await self._follower.stop()
        for task in self._pumps:
            task.cancel()

    async def _drain(self) -> None:
        if not self._pumps:
            return
        _, pending = await asyncio.wait(self._pumps, timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _remember_descendants(self) -> None:
        seen = {p.pid for p in self._known}
        self._known += [p for p in tree.members(self.pid) if p.pid not in seen]

    def signal(self, sig: signal.Signals) -> None:
        self._remember_descendants()
        tree.signal_group(self.pid, sig)

    def kill_tree(self) -> None:
        self._remember_descendants()
        tree.kill_tree(self.pid, self._known)


async def spawn(spec: LaunchSpec, sink: LineSink) -> ChildProcess:
    """Start ``spec`` in a new session (its own process group, so it outlives a kill of this
    server), stdin closed, output piped, or written to files in ``spec.output_dir``."""
    files: dict[str, int] = {}
    try:
        files = open_for_child(spec.output_dir) if spec.output_dir is not None else {}
        process = await asyncio.create_subprocess_exec(
            *spec.argv, cwd=spec.cwd, env=dict(spec.env), stdin=subprocess.DEVNULL,
            stdout=files.get("STDOUT", subprocess.PIPE), stderr=files.get("STDERR", subprocess.PIPE),
            start_new_session=True, preexec_fn=_restore_sigint,  # only resets a signal disposition: safe after fork
        )
    except OSError as error:
        raise LaunchError(f"{spec.name} could not be started: {error.strerror or error} ({spec.argv[0]}).") from None
    finally:
        for fd in files.values():
            os.close(fd)
    return ChildProcess(process, sink, output_dir=spec.output_dir)
