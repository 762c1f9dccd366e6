"""Both ComfyUI backend types against a real ComfyUI (installed by scripts/comfyui-peer): a by-URL
backend reaches running with the features its object_info implies, FreeBackendMemory makes ComfyUI
act on /free, and self-started ComfyUIs (main.py with the venv next to it, and the .sh script) come
up, come back on a new port after SIGKILL, and leave no process behind after toggle, restart,
force restart and delete."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from swarmkeeper.backends.comfyui_info import features_for
from swarmkeeper.backends.tuning import ComfyTimings
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.process import tree
from swarmkeeper.process.policy import RestartPolicy
from tests.comfy_backends import add_backend, comfy_server, log_lines, option_value, process_gone
from tests.comfy_peer import (
    PEER,
    RealComfyUI,
    event_type,
    greeted_events,
    invert_graph,
    run_prompt,
    unique_color,
)
from tests.process_fakes import poll_until
from tests.servers import APIClient

pytestmark = pytest.mark.comfyui

#: A real ComfyUI takes 5 to 30 s to answer on a busy CPU-only machine.
START_SECONDS = 240
#: No paid cloud nodes, no GitHub look-up for the frontend, nothing written into the shared tree.
QUIET = {"FrontendVersion": "None", "EnablePreviews": "false"}


def peer_path(name: str) -> Path:
    done = subprocess.run([str(PEER), "path", f"--{name}"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        pytest.fail(f"real ComfyUI missing ({done.stderr.strip()}); scripts/setup --test installs it")
    return Path(done.stdout.strip())


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[APIClient]:
    async with comfy_server(data_dir, timings=ComfyTimings(), policy=RestartPolicy()) as client:
        yield client


async def running(api: APIClient, backend_id: int) -> dict[str, Any]:
    entry = await api.wait_status(backend_id, "running", "errored", timeout=START_SECONDS)
    assert entry["status"] == "running", entry
    return entry


def comfy_processes(entry: dict[str, Any]) -> list[psutil.Process]:
    members = tree.members(entry["pid"])
    assert members, f"no process for {entry}"
    return members


def port_of(entry: dict[str, Any]) -> int:
    return int(entry["api_url"].rsplit(":", 1)[1])


# --- by URL ---


async def test_by_url_reaches_running_with_the_features_of_the_real_object_info(
        api: APIClient, real_comfyui: RealComfyUI) -> None:
    backend_id = await add_backend(api, "comfyui_api", Address=real_comfyui.url)
    entry = await running(api, backend_id)
    async with ComfyClient(real_comfyui.url) as comfy:
        nodes = (await comfy.object_info()).keys()
    assert set(entry["features"]) == features_for(nodes)
    assert {"comfyui", "freeu", "folderslash"} <= set(entry["features"])  # stock ComfyUI has FreeU...
    assert "variation_seed" not in entry["features"]  # ...but not SwarmUI's SwarmKSampler


async def test_free_backend_memory_makes_the_real_comfyui_drop_its_cache(
        api: APIClient, real_comfyui: RealComfyUI) -> None:
    backend_id = await add_backend(api, "comfyui_api", Address=real_comfyui.url)
    await running(api, backend_id)
    graph = invert_graph(unique_color())
    async with ComfyClient(real_comfyui.url) as comfy, greeted_events(comfy, "free-test") as events:
        await run_prompt(comfy, events, graph)
        _, again = await run_prompt(comfy, events, graph)
        assert cached_nodes(again) == ["1", "2", "3", "4"]  # ComfyUI remembers an identical prompt
        assert await api.ok("FreeBackendMemory", system_ram=True) == {"result": True, "count": 1}
        # ComfyUI applies /free between prompts: by the end of the next prompt at the latest.
        reruns = [cached_nodes((await run_prompt(comfy, events, graph))[1]) for _ in range(2)]
    assert [] in reruns  # the cache was dropped: only /free with free_memory does that


def cached_nodes(events: list[Any]) -> list[str]:
    cached = next(e for e in events if event_type(e) == "execution_cached")
    return sorted(cached["data"]["nodes"])


# --- self-started ---


async def test_self_start_main_py_with_its_venv_comes_back_after_sigkill_and_stops_cleanly(
        api: APIClient, tmp_path: Path) -> None:
    main = peer_path("main")
    kinds = ("output", "input", "user")
    for kind in kinds:
        (tmp_path / kind).mkdir()
    folders = " ".join(f"--{kind}-directory {tmp_path / kind}" for kind in kinds)
    backend_id = await add_backend(
        api, "comfyui_selfstart", StartScript=str(main), GPU_ID="0",
        ExtraArgs=f"--cpu --disable-api-nodes --database-url sqlite:///:memory: {folders}", **QUIET)
    first = await running(api, backend_id)
    process = comfy_processes(first)[0]
    command = process.cmdline()
    assert command[0] == str(main.parent / "venv" / "bin" / "python3") and command[1:3] == ["-s", "main.py"]
    assert option_value(command, "--port") == str(port_of(first))
    assert option_value(command, "--temp-directory").endswith(f"ComfyUI/backend-{backend_id}/temp")
    # the working folder as the kernel has it (resolved: a checkout's .peers may be a link)
    assert process.environ()["CUDA_VISIBLE_DEVICES"] == "0" and process.cwd() == str(main.parent.resolve())
    assert "freeu" in first["features"]

    process.kill()  # SIGKILL: a crash; AutoRestart brings it back on a new port
    await poll_until(lambda: sum(line.endswith(" is loading...") for line in log_lines(api, backend_id)) == 2,
                     timeout=60)
    second = await running(api, backend_id)
    assert port_of(second) > port_of(first) and second["pid"] != first["pid"] and process_gone(first["pid"])

    members = comfy_processes(second)
    await api.ok("ToggleBackend", backend_id=backend_id, enabled=False)
    assert not tree.alive(members)
    assert f"[ComfyUI-{backend_id}/STDERR] Stopped server" in log_lines(api, backend_id)  # SIGINT did it


async def test_self_start_sh_script_survives_restart_force_restart_and_delete_without_leftovers(
        api: APIClient) -> None:
    script = peer_path("script")
    backend_id = await add_backend(api, "comfyui_selfstart", StartScript=str(script),
                                   ExtraArgs="--disable-api-nodes", **QUIET)
    seen: list[psutil.Process] = []
    ports: list[int] = []
    try:
        for action in ("restart", "force", "delete"):
            entry = await running(api, backend_id)
            ports.append(port_of(entry))
            members = comfy_processes(entry)
            seen += members
            if action == "delete":
                assert (await api.ok("DeleteBackend", backend_id=backend_id))["result"] == "Deleted."
            else:
                answer = await api.ok("RestartBackends", backend=str(backend_id), force=action == "force")
                assert answer["count"] == 1
            assert not tree.alive(members), action
        assert not tree.alive(seen) and len(set(ports)) == 3
    finally:
        run_dir = peer_path("run-dir")
        for port in ports:
            shutil.rmtree(run_dir / str(port), ignore_errors=True)
