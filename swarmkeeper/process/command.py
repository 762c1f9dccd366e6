"""Running a short command to completion (``git pull``), with a deadline, its output captured."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from swarmkeeper.process import tree


@dataclass(frozen=True)
class CommandResult:
    returncode: int | None  # None when it was killed at the deadline
    output: str  # stdout and stderr together, trimmed

    @property
    def ok(self) -> bool:
        return self.returncode == 0


async def run_command(argv: Sequence[str], cwd: Path, *, timeout: float,
                      env: Mapping[str, str] | None = None) -> CommandResult:
    """Run ``argv`` in ``cwd``; kill its process tree at the deadline or when cancelled."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as error:
        return CommandResult(None, f"could not run {argv[0]}: {error.strerror or error}")
    try:
        async with asyncio.timeout(timeout):
            output, _ = await process.communicate()
    except TimeoutError:
        await _kill(process)
        return CommandResult(None, f"{argv[0]} did not finish within {timeout:g} s and was stopped")
    except asyncio.CancelledError:
        await _kill(process)
        raise
    return CommandResult(process.returncode, output.decode(errors="replace").strip())


async def _kill(process: asyncio.subprocess.Process) -> None:
    tree.kill_tree(process.pid)
    with contextlib.suppress(TimeoutError, ProcessLookupError):
        await asyncio.wait_for(process.wait(), 5)
