"""Real child processes: output lines, SIGINT restored in the child, the whole tree killed, the
stop sequence against processes that ignore signals, and short commands with a deadline."""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from swarmkeeper.process import tree
from swarmkeeper.process.child import LinePump, spawn
from swarmkeeper.process.command import run_command
from swarmkeeper.process.launch import LaunchError, LaunchSpec
from swarmkeeper.process.policy import RestartPolicy
from swarmkeeper.process.states import ProcessState
from swarmkeeper.process.supervisor import Supervisor
from swarmkeeper_doubles.fake_comfyui_script import write_main
from tests.process_fakes import StateLog, poll_until


def python_spec(code: str, name: str = "child") -> LaunchSpec:
    return LaunchSpec(argv=(sys.executable, "-c", code), cwd=Path.cwd(), env={"PATH": "/usr/bin:/bin"}, name=name)


def gone(pid: int) -> bool:
    return not tree.alive(tree.members(pid))


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """This test process ignores SIGINT, as a server started in the background does."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_line_pump_splits_lines_on_newlines_and_carriage_returns() -> None:
    seen: list[tuple[str, str]] = []
    tail: collections.deque[str] = collections.deque(maxlen=3)
    pump = LinePump("STDERR", lambda stream, line: seen.append((stream, line)), tail)
    pump.feed(b"one\r\ntw")
    pump.feed(b"o\n\n  \n10%|#\r50%|##\rdone")
    pump.close()
    assert [line for _, line in seen] == ["one", "two", "10%|#", "50%|##", "done"]
    assert list(tail) == ["10%|#", "50%|##", "done"] and {stream for stream, _ in seen} == {"STDERR"}


def test_line_pump_cuts_endless_lines() -> None:
    seen: list[str] = []
    pump = LinePump("STDOUT", lambda stream, line: seen.append(line), collections.deque())
    pump.feed(b"x" * 20000)
    pump.close()
    assert len(seen) == 1 and len(seen[0]) == 8192


async def test_output_lines_reach_the_sink_and_the_tail() -> None:
    seen: list[tuple[str, str]] = []
    code = "import sys; print('out 1'); print('err 1', file=sys.stderr); print('err 2', file=sys.stderr)"
    child = await spawn(python_spec(code), lambda stream, line: seen.append((stream, line)))
    assert await child.wait() == 0
    assert sorted(seen) == [("STDERR", "err 1"), ("STDERR", "err 2"), ("STDOUT", "out 1")]
    assert list(child.last_lines) == ["err 1", "err 2"]


async def test_a_missing_interpreter_is_a_launch_error() -> None:
    spec = LaunchSpec(argv=("/nonexistent/python3", "-s", "main.py"), cwd=Path.cwd(), name="ComfyUI-9")
    with pytest.raises(LaunchError, match=r"ComfyUI-9 could not be started: No such file or directory"):
        await spawn(spec, lambda stream, line: None)


async def test_sigint_is_restored_in_the_child_even_when_we_ignore_it(sigint_ignored: None, tmp_path: Path) -> None:
    script = write_main(tmp_path / "ComfyUI")
    lines: list[str] = []
    spec = LaunchSpec(argv=(sys.executable, "-s", "main.py", "--fake-exit", "0"), cwd=script.parent, name="c")
    child = await spawn(spec, lambda stream, line: lines.append(line))
    await child.wait()
    launch = json.loads(next(line for line in lines if line.startswith("FAKE-LAUNCH "))[12:])
    assert launch["sigint_ignored_at_start"] is False


async def test_kill_tree_kills_grandchildren(tmp_path: Path) -> None:
    script = write_main(tmp_path / "ComfyUI")
    lines: list[str] = []
    spec = LaunchSpec(argv=(sys.executable, "-s", "main.py", "--fake-child", "--port", "1"), cwd=script.parent,
                      name="c")
    child = await spawn(spec, lambda stream, line: lines.append(line))
    await poll_until(lambda: any(line.startswith("FAKE-LAUNCH ") for line in lines))
    grandchild = json.loads(next(line for line in lines if line.startswith("FAKE-LAUNCH "))[12:])["grandchild"]
    assert not gone(grandchild)
    child.kill_tree()
    assert await child.wait() == -signal.SIGKILL
    # SIGKILL is delivered asynchronously: a process it was sent to dies when it is next scheduled.
    await poll_until(lambda: gone(grandchild) and gone(child.pid), timeout=10)


class PrintsReady:
    """A launcher of one real process that is ready once it printed ``ready``."""

    def __init__(self, spec: LaunchSpec) -> None:
        self.spec = spec
        self.ready = asyncio.Event()

    def prepare(self) -> LaunchSpec:
        return self.spec

    async def probe(self) -> bool:
        return self.ready.is_set()

    def on_line(self, name: str, stream: str, line: str) -> None:
        if line == "ready":
            self.ready.set()


@pytest.mark.parametrize("ignored", [["SIGINT"], ["SIGINT", "SIGTERM"]])
async def test_stop_escalates_against_real_processes(ignored: list[str]) -> None:
    code = "import signal, subprocess, sys, time\n"
    code += "".join(f"signal.signal(signal.{name}, signal.SIG_IGN)\n" for name in ignored)
    code += "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    code += "print('ready', flush=True); time.sleep(600)"
    launcher = PrintsReady(python_spec(code, "stubborn"))
    states = StateLog()
    supervisor = Supervisor("stubborn", launcher, on_state=states, on_line=launcher.on_line,
                            policy=RestartPolicy(stop_wait=0.3, term_wait=0.3))
    await supervisor.start()
    assert supervisor.process is not None
    members = tree.members(supervisor.process.pid)
    assert len(members) == 2  # the process and the sleeper it started
    await supervisor.stop()
    assert not tree.alive(members)
    assert states.states == [ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING,
                             ProcessState.STOPPED]


async def test_run_command_captures_output_and_stops_at_the_deadline(tmp_path: Path) -> None:
    done = await run_command([sys.executable, "-c", "print('hello'); import sys; sys.exit(3)"], tmp_path, timeout=30)
    assert done.returncode == 3 and done.output == "hello" and not done.ok
    slow = await run_command([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, timeout=0.3)
    assert slow.returncode is None and "did not finish within 0.3 s" in slow.output
    missing = await run_command(["/nonexistent/git", "pull"], tmp_path, timeout=5)
    assert missing.returncode is None and "could not run /nonexistent/git" in missing.output


async def test_a_cancelled_command_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    code = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    task = asyncio.create_task(run_command([sys.executable, "-c", code], tmp_path, timeout=60))
    await poll_until(lambda: marker.exists() and bool(marker.read_text()))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(marker.read_text())
    assert not psutil.pid_exists(pid) or gone(pid)
