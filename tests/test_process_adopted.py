"""A live process that is not our child (process/adopted.py), as one left by an earlier server:
it is recognised only when pid, start and command line all match; its end is noticed without
being its parent; its output is followed from the moment it is adopted; its whole tree can be
stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from swarmkeeper.process import tree
from swarmkeeper.process.adopted import AdoptedProcess, identify, identity_of, start_ticks
from swarmkeeper.process.output import open_for_child
from tests.process_fakes import poll_until

#: The orphan: says hello, starts a sleeper of its own, says bye on SIGTERM.
ORPHAN = """
import signal, subprocess, sys, time
sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
print('hello', flush=True)
def bye(*_):
    print('bye', file=sys.stderr, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
time.sleep(600)
"""


def start_orphan(folder: Path) -> int:
    """Start ORPHAN in a session of its own, writing to files in ``folder``, through a parent that
    exits at once: it is no child of ours. Returns its pid."""
    fds = open_for_child(folder)
    launcher = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {ORPHAN!r}], "
                f"stdout={fds['STDOUT']}, stderr={fds['STDERR']}, pass_fds=({fds['STDOUT']}, {fds['STDERR']}), "
                "start_new_session=True); print(p.pid)")
    try:
        done = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, check=True,
                              pass_fds=tuple(fds.values()))
    finally:
        for fd in fds.values():
            os.close(fd)
    return int(done.stdout)


@pytest.fixture
def orphan(tmp_path: Path) -> Iterator[int]:
    pid = start_orphan(tmp_path)
    try:
        yield pid
    finally:
        tree.kill_tree(pid)


async def until_said(path: Path, text: str) -> None:
    async with asyncio.timeout(20):
        while text not in path.read_text():
            await asyncio.sleep(0.02)


async def test_only_the_very_process_recorded_is_recognised(orphan: int) -> None:
    process = psutil.Process(orphan)
    assert process.ppid() != os.getpid()
    identity = identity_of(process)
    assert identity is not None and identity.ticks == start_ticks(orphan)
    assert identify(orphan, identity) is not None
    assert identify(orphan, dataclasses.replace(identity, ticks=identity.ticks + 1)) is None  # another start
    assert identify(orphan, dataclasses.replace(identity, cmdline=(*identity.cmdline, "x"))) is None
    no_proc = dataclasses.replace(identity, ticks=None)  # without /proc: psutil's start time, to 10 ms
    assert identify(orphan, no_proc) is not None
    assert identify(orphan, dataclasses.replace(no_proc, started=identity.started - 0.5)) is None
    process.kill()
    await asyncio.to_thread(psutil.wait_procs, [process], 10)
    assert identify(orphan, identity) is None


async def test_its_end_is_noticed_and_its_new_output_followed(orphan: int, tmp_path: Path) -> None:
    await until_said(tmp_path / "stdout.log", "hello")
    lines: list[tuple[str, str]] = []
    adopted = AdoptedProcess(psutil.Process(orphan), lambda stream, line: lines.append((stream, line)), tmp_path)
    adopted.signal(signal.SIGTERM)  # to its process group: the orphan says bye and exits
    async with asyncio.timeout(20):
        assert await adopted.wait() is None  # not our child: no exit code
    assert lines == [("STDERR", "bye")]  # 'hello' was written before it was adopted
    assert list(adopted.last_lines) == ["bye"] and adopted.returncode is None


async def test_kill_tree_takes_its_descendants_too(orphan: int, tmp_path: Path) -> None:
    await until_said(tmp_path / "stdout.log", "hello")
    members = tree.members(orphan)
    assert len(members) == 2  # it and its sleeper
    adopted = AdoptedProcess(psutil.Process(orphan), lambda stream, line: None, tmp_path)
    adopted.kill_tree()
    async with asyncio.timeout(20):
        await adopted.wait()
    await poll_until(lambda: not tree.alive(members))  # SIGKILL is sent to all; each dies in its own time


async def test_release_stops_watching_and_leaves_it_running(orphan: int, tmp_path: Path) -> None:
    adopted = AdoptedProcess(psutil.Process(orphan), lambda stream, line: None, tmp_path)
    await adopted.release()
    assert psutil.Process(orphan).is_running() and psutil.Process(orphan).status() != psutil.STATUS_ZOMBIE
