"""The ``comfyui_selfstart`` type through the API, with a stand-in for ComfyUI's main.py (the fake
ComfyUI in a real child process): the command line and environment, readiness, a failed first
launch, bad start scripts, crashes and AutoRestart, the stop sequence, force restart of a backend
stuck loading, its logs, git updates, and that nothing is left running afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper.process.policy import RestartPolicy
from swarmkeeper_doubles.fake_comfyui_script import write_main
from tests.comfy_backends import (
    add_backend,
    comfy_server,
    launches,
    log_lines,
    option_value,
    process_gone,
)
from tests.process_fakes import poll_until
from tests.servers import APIClient

SELF = "comfyui_selfstart"
PLAIN = {"FrontendVersion": "None", "EnablePreviews": "false"}  # no internal flags but the temp folder


@pytest.fixture
def script(tmp_path: Path) -> Path:
    return write_main(tmp_path / "ComfyUI")


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[APIClient]:
    async with comfy_server(data_dir) as client:
        yield client


def first_port(api: APIClient) -> int:
    assert api.services is not None
    return api.services.manager.services.ports.last + 1


async def running(api: APIClient, backend_id: int, timeout: float = 30) -> dict[str, Any]:
    entry = await api.wait_status(backend_id, "running", "errored", timeout=timeout)
    assert entry["status"] == "running", entry
    return entry


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """Our process ignores SIGINT, as a server started in the background (CI) does."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- launching ---


async def test_launch_command_line_environment_and_readiness(api: APIClient, script: Path, data_dir: Path) -> None:
    port = first_port(api)
    backend_id = await add_backend(api, SELF, StartScript=str(script), GPU_ID=" 1,2 ", ExtraArgs="--fake-startup 0.3")
    entry = await running(api, backend_id)
    (launch,) = launches(api, backend_id)
    temp = data_dir / "ComfyUI" / f"backend-{backend_id}" / "temp"
    assert launch["argv"] == ["main.py", "--fake-startup", "0.3", "--port", str(port), "--temp-directory", str(temp),
                              "--preview-method", "latent2rgb", "--front-end-version",
                              "Comfy-Org/ComfyUI_frontend@v1.25.10"]
    assert launch["cwd"] == str(script.parent) and launch["executable"] == sys.executable
    assert launch["env"] == {"CUDA_VISIBLE_DEVICES": "1,2", "ROCR_VISIBLE_DEVICES": "1,2", "HIP_VISIBLE_DEVICES": "1,2"}
    assert entry["api_url"] == f"http://127.0.0.1:{port}" and entry["pid"] == launch["pid"]
    assert "comfyui" in entry["features"] and entry["max_usages"] == 2 and entry["init_attempts"] == 1
    assert temp.is_dir()


async def test_a_venv_next_to_main_py_runs_it(api: APIClient, script: Path) -> None:
    (script.parent / "venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    backend_id = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
    await running(api, backend_id)
    assert launches(api, backend_id)[0]["executable"] == str(script.parent / "venv" / "bin" / "python3")


async def test_a_sh_script_runs_with_bash_and_its_whole_tree_is_stopped(api: APIClient, script: Path) -> None:
    sh = script.parent / "start-comfy.sh"  # not executable, and it does not exec: bash stays the parent
    sh.write_text(f'cd "$(dirname "$0")"\n"{sys.executable}" -s main.py "$@"\necho "ComfyUI ended"\n')
    backend_id = await add_backend(api, SELF, StartScript=str(sh), ExtraArgs="--fake-child", **PLAIN)
    entry = await running(api, backend_id)
    (launch,) = launches(api, backend_id)
    assert entry["pid"] != launch["pid"]  # the pid we watch is bash's
    await api.ok("ToggleBackend", backend_id=backend_id, enabled=False)
    assert process_gone(entry["pid"]) and process_gone(launch["pid"]) and process_gone(launch["grandchild"])
    assert f"[ComfyUI-{backend_id}/STDERR] Stopped server" in log_lines(api, backend_id)


async def test_two_backends_get_their_own_ports_and_temp_folders(api: APIClient, script: Path) -> None:
    port = first_port(api)
    first = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
    second = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
    urls = {(await running(api, backend_id))["api_url"] for backend_id in (first, second)}
    assert urls == {f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"}
    temps = {option_value(launches(api, b)[0]["argv"], "--temp-directory") for b in (first, second)}
    assert len(temps) == 2


async def test_ports_with_a_listener_are_skipped(api: APIClient, script: Path) -> None:
    port = first_port(api)
    with socket.create_server(("127.0.0.1", port)):
        backend_id = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
        entry = await running(api, backend_id)
    assert entry["api_url"] == f"http://127.0.0.1:{port + 1}"


async def test_disable_internal_args_adds_only_the_port(api: APIClient, script: Path) -> None:
    port = first_port(api)
    backend_id = await add_backend(api, SELF, StartScript=str(script), DisableInternalArgs=True,
                                   ExtraArgs='--listen 127.0.0.1 --fake-message "two words"')
    await running(api, backend_id)
    assert launches(api, backend_id)[0]["argv"] == ["main.py", "--listen", "127.0.0.1", "--fake-message", "two words",
                                                    "--port", str(port)]


# --- failures ---


async def test_a_first_launch_that_fails_is_errored_with_its_last_stderr_lines(api: APIClient, script: Path) -> None:
    backend_id = await add_backend(
        api, SELF, StartScript=str(script),
        ExtraArgs="--fake-exit 1 --fake-message 'Traceback (most recent call last):' "
                  "--fake-message \"ModuleNotFoundError: No module named 'torch'\"")
    entry = await api.wait_status(backend_id, "errored", timeout=30)
    assert entry["status_reason"] == (
        f"ComfyUI-{backend_id} exited with code 1 before it was ready: Starting server | "
        "Traceback (most recent call last): | ModuleNotFoundError: No module named 'torch'")
    assert entry["init_attempts"] == 1 and len(launches(api, backend_id)) == 1 and entry["pid"] is None


@pytest.mark.parametrize(("start_script", "extra", "reason"), [
    ("missing/main.py", "", "does not exist"),
    ("{dir}/main.txt", "", "is not a .py or .sh file"),
    ("{dir}/main.py; rm -rf /", "", "holds characters a start script path may not have ( ; )"),
    ("{dir}/$(id)/main.py", "", "( $ )"),
    ("{dir}/main.py", "--cpu 'unbalanced", "ExtraArgs setting could not be read"),
    # ExtraArgs holding NUL: refused by EditBackend itself now (tests/test_unstorable_text.py)
    ("{dir}/" + "x" * 4000 + "/main.py", "", "cannot be used: File name too long"),
])
async def test_bad_settings_are_errored_and_nothing_is_launched(api: APIClient, script: Path, start_script: str,
                                                                extra: str, reason: str) -> None:
    assert api.services is not None
    ports = api.services.manager.services.ports.last
    backend_id = await add_backend(api, SELF, StartScript=start_script.format(dir=script.parent), ExtraArgs=extra)
    entry = await api.wait_status(backend_id, "errored", timeout=30)
    assert reason in entry["status_reason"] and entry["init_attempts"] == 1
    assert launches(api, backend_id) == [] and api.services.manager.services.ports.last == ports


async def test_a_crash_after_start_restarts_on_a_new_port(api: APIClient, script: Path) -> None:
    port = first_port(api)
    backend_id = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
    first = await running(api, backend_id)
    os.kill(first["pid"], signal.SIGKILL)
    await poll_until(lambda: len(launches(api, backend_id)) == 2)
    second = await running(api, backend_id)
    assert first["api_url"] == f"http://127.0.0.1:{port}" and second["api_url"] == f"http://127.0.0.1:{port + 1}"
    assert second["pid"] != first["pid"] and process_gone(first["pid"])
    assert second["init_attempts"] == 1  # the relaunch is the supervisor's, not an init retry


async def test_a_crash_without_auto_restart_is_errored(api: APIClient, script: Path) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(script), AutoRestart=False, **PLAIN)
    first = await running(api, backend_id)
    os.kill(first["pid"], signal.SIGKILL)
    entry = await api.wait_status(backend_id, "errored")
    assert entry["status_reason"].startswith(f"ComfyUI-{backend_id} was killed by SIGKILL unexpectedly: ")
    assert len(launches(api, backend_id)) == 1
    assert (await api.ok("RestartBackends", backend=str(backend_id)))["count"] == 1  # errored is restartable
    assert (await running(api, backend_id))["pid"] != first["pid"]


# --- stopping ---


async def test_toggle_restart_and_delete_leave_no_process_behind(api: APIClient, script: Path,
                                                                 sigint_ignored: None) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(script), ExtraArgs="--fake-child", **PLAIN)
    pids: list[int] = []
    for step in ("toggle", "restart", "delete"):
        entry = await running(api, backend_id)
        launch = launches(api, backend_id)[-1]
        assert launch["sigint_ignored_at_start"] is False  # restored in the child although we ignore it
        pids += [entry["pid"], launch["grandchild"]]
        if step == "toggle":
            await api.ok("ToggleBackend", backend_id=backend_id, enabled=False)
            assert (await api.ok("ListBackends"))[str(backend_id)]["status"] == "disabled"
            assert all(process_gone(pid) for pid in pids)
            await api.ok("ToggleBackend", backend_id=backend_id, enabled=True)
        elif step == "restart":
            assert (await api.ok("RestartBackends", backend=str(backend_id)))["count"] == 1
        else:
            assert (await api.ok("DeleteBackend", backend_id=backend_id))["result"] == "Deleted."
    assert all(process_gone(pid) for pid in pids)
    stopped = [line for line in log_lines(api, backend_id) if line.endswith("/STDERR] Stopped server")]
    assert len(stopped) == 3  # each stop was ComfyUI's own SIGINT shutdown


async def test_a_process_that_ignores_sigint_is_stopped_by_sigterm(api: APIClient, script: Path) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(script), ExtraArgs="--fake-ignore SIGINT", **PLAIN)
    entry = await running(api, backend_id)
    await api.ok("ToggleBackend", backend_id=backend_id, enabled=False)
    assert process_gone(entry["pid"])
    assert not any(line.endswith("Stopped server") for line in log_lines(api, backend_id))


async def test_force_restart_kills_a_backend_stuck_loading_at_once(data_dir: Path, script: Path) -> None:
    patient = RestartPolicy(stop_wait=3600, term_wait=3600)  # a graceful stop would never end in this test
    async with comfy_server(data_dir, policy=patient) as api:
        stubborn = "--fake-fault hang --fake-ignore SIGINT --fake-ignore SIGTERM"
        backend_id = await add_backend(api, SELF, StartScript=str(script), ExtraArgs=stubborn, **PLAIN)
        await poll_until(lambda: len(launches(api, backend_id)) == 1)
        stuck = await api.wait_status(backend_id, "loading")
        assert "waiting for it to answer" in stuck["status_reason"]
        assert (await api.ok("RestartBackends", backend=str(backend_id)))["count"] == 0  # SwarmUI's rule
        async with asyncio.timeout(60):
            assert (await api.ok("RestartBackends", backend=str(backend_id), force=True))["count"] == 1
        assert process_gone(stuck["pid"])
        await poll_until(lambda: len(launches(api, backend_id)) == 2)
        async with asyncio.timeout(60):
            await api.ok("RestartBackends", backend="all", force=True)
            await api.ok("DeleteBackend", backend_id=backend_id)
        assert all(process_gone(launch["pid"]) for launch in launches(api, backend_id))


async def test_server_shutdown_stops_every_process(data_dir: Path, script: Path) -> None:
    async with comfy_server(data_dir) as api:
        ids = [await add_backend(api, SELF, StartScript=str(script), ExtraArgs="--fake-child", **PLAIN)
               for _ in range(2)]
        entries = [await running(api, backend_id) for backend_id in ids]
        grandchildren = [launches(api, backend_id)[0]["grandchild"] for backend_id in ids]
    assert all(process_gone(entry["pid"]) for entry in entries) and all(map(process_gone, grandchildren))


# --- memory, logs ---


async def test_free_memory_reaches_the_self_started_comfyui(api: APIClient, script: Path) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
    entry = await running(api, backend_id)
    assert await api.ok("FreeBackendMemory", system_ram=True) == {"result": True, "count": 1}
    async with httpx.AsyncClient() as http:
        calls = (await http.get(entry["api_url"] + "/__fake__/calls")).json()
    frees = [call["body"] for call in calls if call["route"] == "/free"]
    assert frees == [{"unload_models": True, "free_memory": True}]


async def test_process_output_is_kept_under_backend_id_and_read_through_the_api(api: APIClient, script: Path) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
    entry = await running(api, backend_id)
    types = (await api.ok("ListLogTypes"))["types_available"]
    assert {"name": f"backend-{backend_id}", "color": "#88aaff", "identifier": f"backend-{backend_id}"} in types
    answer = await api.ok("ListRecentLogMessages", types=[f"backend-{backend_id}"])
    messages = [line["message"] for line in answer["data"][f"backend-{backend_id}"]]
    assert f"[ComfyUI-{backend_id}/STDERR] To see the GUI go to: {entry['api_url']}" in messages
    assert f"Self-Start ComfyUI-{backend_id} on port {entry['api_url'].rsplit(':', 1)[1]} is loading..." in messages


# --- AutoUpdate and UpdateManagedNodes ---


def git(cwd: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=master", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def published_checkout(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A repository with a bare origin, cloned into ``name``; returns (clone, a second clone to push from)."""
    origin = tmp_path / f"{name}-origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    pusher = tmp_path / f"{name}-pusher"
    git(tmp_path, "clone", "-q", str(origin), str(pusher))
    (pusher / "README").write_text("v1\n")
    git(pusher, "add", "README")
    git(pusher, "commit", "-q", "-m", "v1")
    git(pusher, "push", "-q", "origin", "HEAD")
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    return clone, pusher


def publish(pusher: Path, file: str) -> None:
    (pusher / file).write_text("new\n")
    git(pusher, "add", file)
    git(pusher, "commit", "-q", "-m", f"add {file}")
    git(pusher, "push", "-q", "origin", "HEAD")


async def test_auto_update_pulls_comfyui_and_its_node_checkouts(api: APIClient, tmp_path: Path) -> None:
    comfy, comfy_pusher = published_checkout(tmp_path, "ComfyUI")
    script = write_main(comfy)
    (comfy / "README").write_text("local change\n")  # aggressive stashes it around the pull
    (comfy / "custom_nodes").mkdir()
    node, node_pusher = published_checkout(comfy / "custom_nodes", "SomeNodes")
    publish(comfy_pusher, "new_feature.py")
    publish(node_pusher, "new_node.py")
    backend_id = await add_backend(api, SELF, StartScript=str(script), AutoUpdate="aggressive",
                                   UpdateManagedNodes="true", **PLAIN)
    await running(api, backend_id)
    assert (comfy / "new_feature.py").exists() and (node / "new_node.py").exists()
    assert (comfy / "README").read_text() == "local change\n"
    lines = log_lines(api, backend_id)
    assert any(line.startswith(f"AutoUpdate: git pull --autostash in {comfy} done") for line in lines)
    assert any(line.startswith(f"UpdateManagedNodes: git pull in {node} done") for line in lines)


async def test_auto_update_says_plainly_when_it_skipped(api: APIClient, script: Path) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(script), AutoUpdate="true", UpdateManagedNodes="true",
                                   **PLAIN)
    await running(api, backend_id)
    lines = log_lines(api, backend_id)
    assert f"AutoUpdate: update skipped, {script.parent} is not a git checkout" in lines
    assert f"UpdateManagedNodes: update skipped, no git checkouts in {script.parent / 'custom_nodes'}" in lines
