"""Compatibility with real SwarmUI in both directions, held to the reference's shapes (§10.1,
§10.2), since no real SwarmUI (C#/.NET) runs here:

- swarmkeeper as the client: a Swarm-API parent against a double that answers as SwarmUI does
  (the exact requests SwarmUI's own SwarmSwarmBackend sends, children from SwarmUI-shaped entries,
  re-session on invalid_session_id, and every kind of bad answer);
- swarmkeeper as the remote: the calls a SwarmUI server makes on us, checked field by field.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper_doubles.swarm_double import SwarmDouble, run_swarm_double
from tests.swarm_support import (
    Server,
    add_backend,
    add_swarm,
    children,
    listing,
    loopback_server,
    wait_children,
    wait_parent,
)

CATEGORIES = ["Stable-Diffusion", "VAE", "LoRA", "Embedding", "ControlNet", "ClipVision"]


@pytest.fixture
async def double() -> AsyncIterator[SwarmDouble]:
    async with run_swarm_double() as running:
        running.add_backend(0, "comfyui_selfstart", title="GPU 0", features=["comfyui", "folderslash"])
        running.add_backend(1, "comfyui_selfstart", title="GPU 1", status="loading")
        running.add_backend(2, "swarmswarmbackend", title="its own remote", can_load_models=False, max_usages=1)
        running.add_backend(-1, "swarmswarmbackend", title="[Remote from 2: its own remote] far GPU",
                            features=["comfyui"], current_model="far.safetensors")
        running.models = {"Stable-Diffusion": ["sdxl.safetensors"], "VAE": ["ae.safetensors"], "LoRA": []}
        yield running


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Server]:
    async with loopback_server(tmp_path / "A") as server:
        yield server


def by_remote_id(found: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {child["remote_id"]: child for child in found}


async def test_parent_sends_what_swarmui_sends(local: Server, double: SwarmDouble) -> None:
    parent = await add_swarm(local.api, double.url, "double")
    entry = await wait_parent(local.api, parent, "loading", "Waiting for 1 remote backends to load...")
    assert entry["features"] == ["comfyui", "folderslash"]
    found = by_remote_id(await wait_children(local.api, parent, 2))
    assert found[0]["title"] == "[Remote from 0: double] GPU 0" and found[0]["can_load_models"] is True
    assert found[-1]["current_model"] == "far.safetensors" and found[-1]["remote_type"] == "swarmswarmbackend"
    double.backends[1].status = "running"
    await wait_parent(local.api, parent, "running")
    await wait_children(local.api, parent, 3)
    assert double.calls[0] == ("GetNewSession", {})
    parent_session = double.calls[1][1]["session_id"]
    assert double.calls[1] == ("ListBackends", {"session_id": parent_session, "nonreal": True, "full_data": True})
    models = double.calls_to("ListModels")
    assert models[: len(CATEGORIES)] == [{"session_id": parent_session, "path": "", "depth": 999, "subtype": category,
                                          "allowRemote": True, "dataImages": False} for category in CATEGORIES]
    sessions = double.calls_to("GetNewSession")
    assert len(sessions) == 4  # the parent's, and one per child (as SwarmUI's children do)


async def test_remote_models_and_forwarding_off(local: Server, double: SwarmDouble) -> None:
    parent = await add_swarm(local.api, double.url, AllowForwarding=False)
    double.backends[1].status = "running"
    found = by_remote_id(await wait_children(local.api, parent, 2))
    assert set(found) == {0, 1}  # no child for the remote's own Swarm-API backends
    assert {body["allowRemote"] for body in double.calls_to("ListModels")} == {False}
    listed = await local.api.ok("ListModels", path="", depth=5)
    assert [(f["name"], f["local"]) for f in listed["files"]] == [("sdxl.safetensors", False)]


async def test_free_memory_and_select_model_forwarded(local: Server, double: SwarmDouble) -> None:
    parent = await add_swarm(local.api, double.url)
    found = by_remote_id(await wait_children(local.api, parent, 2))
    assert await local.api.ok("FreeBackendMemory", backend=str(found[0]["id"])) == {"result": True, "count": 1}
    (freed,) = double.calls_to("FreeBackendMemory")
    assert set(freed) == {"session_id", "system_ram", "backend"}
    assert (freed["system_ram"], freed["backend"]) == (False, "0")
    assert await local.api.ok("SelectModel", model="sdxl", backendId=str(found[0]["id"])) == {"success": True}
    (selected,) = double.calls_to("SelectModel")
    assert (selected["model"], selected["backendId"]) == ("sdxl.safetensors", "0")
    assert double.backends[0].current_model == "sdxl.safetensors"


async def test_forgotten_sessions_are_remade(local: Server, double: SwarmDouble) -> None:
    double.backends[1].status = "running"
    parent = await add_swarm(local.api, double.url)
    found = by_remote_id(await wait_children(local.api, parent, 3))
    before = len(double.calls_to("GetNewSession"))
    double.forget_sessions()
    await local.api.ok("TriggerRefresh")
    refused, retried = double.calls_to("TriggerRefresh")  # the forgotten session, then a new one
    assert refused["session_id"] != retried["session_id"] and retried["session_id"] in double.sessions
    assert await local.api.ok("FreeBackendMemory", backend=str(found[0]["id"])) == {"result": True, "count": 1}
    assert len(double.calls_to("GetNewSession")) == before + 2  # the parent's and the child's
    assert (await listing(local.api))[str(parent)]["status"] == "running"


@pytest.mark.parametrize(("fault", "words"), [
    ("html", "answered an HTML page (HTTP 200), not SwarmUI's API"),
    ("garbage", "answered something that is not JSON (HTTP 200)"),
    ("error500", "(HTTP 500)"),
    ("huge", "is too large"),
    ("hang", "did not answer within 1 s"),
    ("unauthorized", "requires an Authorization header"),
])
async def test_bad_remote_answers_become_reasons(local: Server, double: SwarmDouble, fault: str, words: str) -> None:
    double.fault = fault
    parent = await add_swarm(local.api, double.url, ConnectionAttemptTimeoutSeconds=1)
    entry = await wait_parent(local.api, parent, "errored", words)
    assert entry["status_reason"].startswith(f"Cannot use the remote Swarm at {double.url}: ")
    assert entry["status_reason"].endswith("(trying again every 5 s)")


async def test_back_to_running_once_the_remote_answers_again(local: Server, double: SwarmDouble) -> None:
    double.fault = "error500"
    strict = await add_swarm(local.api, double.url)
    parent = await add_swarm(local.api, double.url, AllowIdle=True)
    await wait_parent(local.api, strict, "errored", "(HTTP 500)")
    await wait_parent(local.api, parent, "idle", "(HTTP 500)")
    double.fault = "unauthorized"
    await wait_parent(local.api, parent, "errored", "requires an Authorization header")  # a refusal is an error
    double.fault = None
    await wait_parent(local.api, parent, "loading", "Waiting for 1 remote backends to load...")
    await wait_children(local.api, parent, 2)


async def test_server_answers_while_a_remote_hangs(local: Server, double: SwarmDouble) -> None:
    double.fault = "hang"
    parent = await add_swarm(local.api, double.url, ConnectionAttemptTimeoutSeconds=600)
    entry = await wait_parent(local.api, parent, "loading", f"Connecting to {double.url}...")
    assert entry["features"] == []
    await add_backend(local.api, "swarmkeeper_dummy", "meanwhile", Address="dummy")
    await local.api.wait_status(1, "running")
    await local.api.ok("DeleteBackend", backend_id=parent)  # cancels the hung connection attempt
    assert children(await listing(local.api), parent) == []


# --- swarmkeeper as the remote of a SwarmUI server ---

async def test_what_a_swarmui_server_reads_from_us(tmp_path: Path) -> None:
    async with loopback_server(tmp_path / "B") as ours:
        await add_backend(ours.api, "swarmkeeper_dummy", "gpu", Address="dummy")
        await add_backend(ours.api, "test_models", "models", Address="x", Models="Stable-Diffusion=m.safetensors")
        await add_backend(ours.api, "test_llm", "llm", Address="x")
        for backend_id in (0, 1, 2):
            await ours.api.wait_status(backend_id, "running")
        async with httpx.AsyncClient(base_url=ours.url) as swarmui:
            await swarmui_reads(swarmui, ours)


async def swarmui_reads(swarmui: httpx.AsyncClient, ours: Server) -> None:
    """SwarmSwarmBackend's calls, in its order, each checked as SwarmUI reads the answer."""
    session = (await swarmui.post("/API/GetNewSession", json={})).json()
    assert isinstance(session["session_id"], str) and session["server_id"] == ours.services.server_id
    sid = session["session_id"]
    backends = (await swarmui.post("/API/ListBackends", json={"session_id": sid, "nonreal": True,
                                                              "full_data": True})).json()
    for key, entry in backends.items():
        assert int(key) == entry["id"] and entry["status"] in ("disabled", "errored", "waiting", "loading", "idle",
                                                                  "running")
        assert isinstance(entry["type"], str) and isinstance(entry["title"], str)
        assert isinstance(entry["max_usages"], int) and all(isinstance(f, str) for f in entry["features"])
        assert entry.get("current_model") is None or isinstance(entry["current_model"], str)
        if entry["status"] == "running":
            assert isinstance(entry["can_load_models"], bool)
    assert backends["2"]["can_load_models"] is False  # the non-text-to-image backend
    models = (await swarmui.post("/API/ListModels", json={"session_id": sid, "path": "", "depth": 999,
                                                          "subtype": "Stable-Diffusion", "allowRemote": True,
                                                          "dataImages": True})).json()
    assert [entry["name"] for entry in models["files"]] == ["m.safetensors"]
    freed = (await swarmui.post("/API/FreeBackendMemory", json={"session_id": sid, "system_ram": False,
                                                                "backend": "0"})).json()
    assert freed == {"result": True, "count": 1}
    selected = (await swarmui.post("/API/SelectModel", json={"session_id": sid, "model": "m", "backendId": 1})).json()
    assert selected == {"success": True}
    refreshed = (await swarmui.post("/API/TriggerRefresh", json={"session_id": sid})).json()
    assert refreshed["models"]["Stable-Diffusion"] == [["m.safetensors", None]]
    stale = await swarmui.post("/API/ListBackends", json={"session_id": "expired", "nonreal": True})
    assert stale.status_code == 401 and stale.json()["error_id"] == "invalid_session_id"


async def test_deleting_during_a_refresh_leaves_nothing_behind(local: Server, double: SwarmDouble) -> None:
    double.backends[1].status = "running"
    parent = await add_swarm(local.api, double.url)
    await wait_children(local.api, parent, 3)
    await wait_parent(local.api, parent, "running")
    double.fault = "hang"
    refreshing = asyncio.create_task(local.api.ok("TriggerRefresh"))
    await wait_for_calls(double, "TriggerRefresh", 1)  # the refresh now hangs on the remote
    await local.api.ok("DeleteBackend", backend_id=parent)
    assert "models" in await refreshing  # it ends (the hung request is cut), without error
    double.fault = None
    entries = await listing(local.api)
    assert entries == {}  # no child spawned by the refresh after its parent went


async def wait_for_calls(double: SwarmDouble, route: str, count: int) -> None:
    for _ in range(500):
        if len(double.calls_to(route)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{route} was never called {count} times: {double.calls}")
