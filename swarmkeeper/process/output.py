"""A process's output through files: it writes stdout and stderr to two files of a folder of its
own, and a :class:`OutputFollower` reads the new lines from them as they come.

Why files and not pipes: a pipe dies with its reader. When this server is killed (kill -9, a
crash, an upgrade), a child writing to a pipe gets EPIPE on its next line (ComfyUI's progress
bars and log lines then raise inside its prompts); a file outlives us, and the next server can
follow the output of a process it adopted from the point it took over.

The files are emptied at each launch. A file that grows past :data:`MAX_BYTES` is emptied again
once read to its end (the child opened it with O_APPEND, so its next line starts at offset 0);
lines written in the instant between that last read and the truncation are lost. What was read
is in the server's logs (``<data_dir>/logs/backend-<id>.log``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

#: The files, by stream name.
FILES = {"STDOUT": "stdout.log", "STDERR": "stderr.log"}
#: A file is emptied once read to its end past this size.
MAX_BYTES = 16 * 1024 * 1024
#: Seconds between two looks at the files.
POLL_SECONDS = 0.1
#: Most bytes read from one file per look (the rest waits for the next look).
CHUNK = 1024 * 1024


def open_for_child(folder: Path) -> dict[str, int]:
    """Empty (or create) both files and open them for a child to write: descriptors by stream,
    to hand to the child and close in the parent."""
    folder.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    return {stream: os.open(folder / name, flags, 0o600) for stream, name in FILES.items()}


class FileTail:
    """The new bytes of one file, split into lines for a pump (anything with ``feed``/``close``)."""

    def __init__(self, path: Path, feed: Callable[[bytes], None], *, from_end: bool) -> None:
        self.path = path
        self.feed = feed
        self._fd: int | None = None
        self.offset = 0
        with contextlib.suppress(OSError):
            self._fd = os.open(path, os.O_RDONLY)
            self.offset = os.fstat(self._fd).st_size if from_end else 0

    def poll(self) -> None:
        """Read what was written since the last look. A regular file read from the page cache does
        not wait on anything (and asyncio has no readiness events for regular files), so this runs
        on the event loop; at most :data:`CHUNK` bytes per call."""
        if self._fd is None:
            return
        size = os.fstat(self._fd).st_size
        if size < self.offset:  # emptied by someone else
            self.offset = 0
        if size > self.offset:
            data = os.pread(self._fd, min(CHUNK, size - self.offset), self.offset)
            self.offset += len(data)
            self.feed(data)
        if self.offset >= MAX_BYTES and self.offset >= os.fstat(self._fd).st_size:
            with contextlib.suppress(OSError):
                os.truncate(self.path, 0)
            self.offset = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Pump(Protocol):
    """Bytes in, lines out (:class:`~swarmkeeper.process.child.LinePump`)."""

    def feed(self, chunk: bytes) -> None: ...

    def close(self) -> None: ...


class OutputFollower:
    """Both files of one process, looked at every :data:`POLL_SECONDS` until :meth:`stop`; what
    they hold goes to the pump of their stream."""

    def __init__(self, folder: Path, pumps: Mapping[str, Pump], *, from_end: bool) -> None:
        self.folder = folder
        self._pumps = dict(pumps)
        self._files = [FileTail(folder / name, self._pumps[stream].feed, from_end=from_end)
                       for stream, name in FILES.items()]
        self._task: asyncio.Task[None] | None = asyncio.create_task(self._run(), name=f"output-{folder.name}")

    def catch_up(self) -> None:
        """Take in everything written so far, now."""
        for tail in self._files:
            while True:
                before = tail.offset
                tail.poll()
                if tail.offset <= before:
                    break

    async def _run(self) -> None:
        while True:
            for tail in self._files:
                tail.poll()
            await asyncio.sleep(POLL_SECONDS)

    async def stop(self) -> None:
        """Read to the end one last time, then stop looking (safe to call twice)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.catch_up()
        for pump in self._pumps.values():
            pump.close()
        for tail in self._files:
            tail.close()
