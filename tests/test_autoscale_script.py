"""The script provider against real scripts: each protocol line, each bad script, and nothing left
running afterwards (the script's process group and descendants, checked with psutil)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import psutil
import pytest

from swarmkeeper.backends.autoscale_provider import Launched, LaunchFailed
from swarmkeeper.backends.autoscale_script import ScriptProvider, ScriptRun, protocol_line, url_problem

LOG = logging.getLogger("test.autoscale")


def script(folder: Path, body: str, *, executable: bool = True, name: str = "launch.sh") -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def line(text: str) -> str:
    return f"echo '[SwarmAutoScaleBackend]{text}[/SwarmAutoScaleBackend]'\n"


def group_members(pgid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def provider(path: Path, timeout: float = 10.0) -> ScriptProvider:
    return ScriptProvider(str(path), timeout=timeout, log=LOG, grace=0.5)


def test_protocol_lines() -> None:
    assert protocol_line("  [SwarmAutoScaleBackend]NewURL: http://a:1/[/SwarmAutoScaleBackend] ") == \
        ("NewURL", "http://a:1/")
    assert protocol_line("[SwarmAutoScaleBackend] DoRetries:3 [/SwarmAutoScaleBackend]") == ("DoRetries", "3")
    assert protocol_line("NewURL: http://a:1/") is None
    assert protocol_line("[swarmautoscalebackend]NewURL: x[/swarmautoscalebackend]") is None
    assert url_problem("http://127.0.0.1:7801/") is None
    assert url_problem("ftp://host/") == "not an http(s) URL"
    assert url_problem("http://") == "not an http(s) URL"


async def test_new_url_with_retries_leaves_the_script_running_until_released(tmp_path: Path) -> None:
    path = script(tmp_path, "echo starting\n" + line("DoRetries: 4") + line("NewURL: http://127.0.0.1:9/")
                  + "sleep 60\n")
    outcome = await provider(path).launch(1)
    assert isinstance(outcome, Launched)
    assert (outcome.url, outcome.retries) == ("http://127.0.0.1:9/", 4)
    assert isinstance(outcome.handle, ScriptRun)
    pid = outcome.handle.process.pid
    assert group_members(pid)  # the script runs on after NewURL (srun works)
    await outcome.handle.release()
    assert group_members(pid) == []


async def test_default_retries_is_one_and_cwd_is_the_script_folder(tmp_path: Path) -> None:
    path = script(tmp_path, 'echo "[SwarmAutoScaleBackend]NewURL: http://127.0.0.1:9/$(basename "$PWD")'
                            '[/SwarmAutoScaleBackend]"\n')
    outcome = await provider(path).launch(1)
    assert isinstance(outcome, Launched)
    assert (outcome.url, outcome.retries) == (f"http://127.0.0.1:9/{tmp_path.name}", 1)
    await outcome.handle.release()


async def test_declare_failed(tmp_path: Path) -> None:
    path = script(tmp_path, line("DeclareFailed: no GPU free") + "sleep 60\n")
    outcome = await provider(path).launch(1)
    assert outcome == LaunchFailed("The start script declared a failure: no GPU free", declared=True)


async def test_prints_nothing_is_bounded_by_the_timeout_and_stopped(tmp_path: Path) -> None:
    path = script(tmp_path, "sleep 60 &\nwait\n")
    run = provider(path, timeout=1.0)
    outcome = await run.launch(1)
    assert outcome == LaunchFailed("The start script gave no NewURL within 1 s; it was stopped.")
    assert run.runs == []
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "60"]
                and p.ppid() in (1, os.getpid())]


async def test_garbage_then_exit(tmp_path: Path) -> None:
    path = script(tmp_path, "head -c 3000 /dev/urandom\necho\necho '[SwarmAutoScaleBackend]NewURL'\n"
                            "echo 'SwarmAutoScaleBackendNewURL: http://127.0.0.1:9/'\necho bye >&2\nexit 3\n")
    outcome = await provider(path).launch(1)
    assert isinstance(outcome, LaunchFailed) and not outcome.declared
    assert outcome.reason.startswith("The start script ended (exit code 3) without giving a NewURL: ")
    assert outcome.reason.endswith("bye")


@pytest.mark.parametrize(("url", "problem"), [("ftp://127.0.0.1/", "not an http(s) URL"),
                                              ("127.0.0.1:7801", "not an http(s) URL")])
async def test_non_http_url_fails_and_stops_the_script(tmp_path: Path, url: str, problem: str) -> None:
    path = script(tmp_path, line(f"NewURL: {url}") + "sleep 60\n")
    run = provider(path)
    outcome = await run.launch(1)
    assert outcome == LaunchFailed(f"The start script printed NewURL '{url}', {problem}.")
    assert run.runs == []


async def test_bad_retries_fail(tmp_path: Path) -> None:
    path = script(tmp_path, line("DoRetries: many") + line("NewURL: http://127.0.0.1:9/"))
    outcome = await provider(path).launch(1)
    assert outcome == LaunchFailed("The start script printed DoRetries 'many', not a whole number.")


async def test_missing_and_not_executable(tmp_path: Path) -> None:
    missing = provider(tmp_path / "nope.sh")
    assert missing.problem() == f"StartScript '{tmp_path}/nope.sh' does not exist (looked for {tmp_path}/nope.sh)."
    assert await missing.launch(1) == LaunchFailed(missing.problem() or "")
    plain = provider(script(tmp_path, line("NewURL: http://127.0.0.1:9/"), executable=False))
    assert plain.problem() is not None and "is not executable" in plain.problem()  # type: ignore[operator]
    assert ScriptProvider("  ", timeout=1, log=LOG).problem() == "No StartScript is set."


async def test_close_ends_every_run(tmp_path: Path) -> None:
    path = script(tmp_path, line("NewURL: http://127.0.0.1:9/") + "trap '' TERM\nsleep 60 &\nwait\n")
    run = provider(path)
    first, second = await run.launch(1), await run.launch(2)
    assert isinstance(first, Launched) and isinstance(second, Launched)
    pids = [run.runs[0].process.pid, run.runs[1].process.pid]
    await run.close()
    assert all(group_members(pid) == [] for pid in pids)
