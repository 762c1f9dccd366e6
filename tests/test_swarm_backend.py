"""The Swarm-API backend type between two swarmkeeper servers on loopback sockets (in this
process, so a test can look inside B): the type as SwarmUI declares it, children, their titles,
features and models, memory freeing forwarded by remote id, children coming and going with the
remote's backends and with the parent, loop refusal, and mutual sharing without a cascade."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from swarmkeeper.testing.dummy_backend import DummyBackend
from tests.model_backend import ModelBackend
from tests.ports import free_port
from tests.swarm_support import (
    Server,
    add_backend,
    add_swarm,
    children,
    listing,
    loopback_server,
    wait_children,
    wait_listing,
    wait_parent,
)

SETTING_NAMES = ["Address", "AllowIdle", "AllowForwarding", "AllowWebsocket", "AuthorizationHeader", "OtherHeaders",
                 "ConnectionAttemptTimeoutSeconds"]


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[Server]:
    async with loopback_server(tmp_path / "B") as server:
        yield server


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Server]:
    async with loopback_server(tmp_path / "A") as server:
        yield server


async def test_type_is_declared_as_swarmui_declares_it(local: Server) -> None:
    types = (await local.api.ok("ListBackendTypes"))["list"]
    swarm = types[0]
    assert (swarm["id"], swarm["name"], swarm["is_standard"]) == ("swarmswarmbackend", "Swarm-API-Backend", True)
    assert swarm["description"] == "Connect SwarmUI to another instance of SwarmUI as a backend."
    assert [s["name"] for s in swarm["settings"]] == SETTING_NAMES
    kinds = {s["name"]: (s["type"], s["is_secret"]) for s in swarm["settings"]}
    assert kinds["AuthorizationHeader"] == ("text", True)
    assert kinds["AllowIdle"] == ("boolean", False) and kinds["ConnectionAttemptTimeoutSeconds"] == ("integer", False)
    added = await local.api.ok("AddNewBackend", type_id="swarmswarmbackend")
    assert added["settings"] == {"Address": "", "AllowIdle": False, "AllowForwarding": True, "AllowWebsocket": True,
                                 "AuthorizationHeader": "", "OtherHeaders": "", "ConnectionAttemptTimeoutSeconds": 30}
    entry = await local.api.wait_status(added["id"], "disabled")
    assert entry["status_reason"] == "No address is set." and entry["can_load_models"] is False


async def test_one_child_per_running_remote_backend(local: Server, remote: Server) -> None:
    gpu = await add_backend(remote.api, "swarmkeeper_dummy", "gpu one", Address="dummy", OverQueue=2)
    await add_backend(remote.api, "swarmkeeper_dummy", "unconfigured")
    await remote.api.wait_status(gpu, "running")
    parent = await add_swarm(local.api, remote.url, "Render box")
    (child,) = await wait_children(local.api, parent, 1)
    assert child["id"] < 0 and child["type"] == "swarmswarmbackend"
    assert child["title"] == "[Remote from 0: Render box] gpu one"
    assert child["features"] == ["dummy"] and child["max_usages"] == 3 and child["can_load_models"] is True
    assert child["remote_id"] == gpu and child["remote_type"] == "swarmkeeper_dummy"
    assert child["remote_address"] == remote.url and child["remote_server_id"] == remote.services.server_id
    assert child["swarm_chain"] == [remote.services.server_id]
    entry = (await listing(local.api))[str(parent)]
    assert entry["status"] == "running" and entry["features"] == ["dummy"] and entry["can_load_models"] is False
    assert entry["swarm_chain"] == [remote.services.server_id]
    assert list(await local.api.ok("ListBackends")) == [str(parent)]  # children are non-real


async def test_free_memory_is_forwarded_by_remote_id(local: Server, remote: Server) -> None:
    gpu = await add_backend(remote.api, "swarmkeeper_dummy", "gpu", Address="dummy")
    await add_backend(remote.api, "swarmkeeper_dummy", "other", Address="dummy")
    parent = await add_swarm(local.api, remote.url)
    found = await wait_children(local.api, parent, 2)
    child = next(entry for entry in found if entry["remote_id"] == gpu)
    answer = await local.api.ok("FreeBackendMemory", system_ram=True, backend=str(child["id"]))
    assert answer == {"result": True, "count": 1}
    freed = {record.id: record.backend.freed for record in remote.services.registry.all()
             if isinstance(record.backend, DummyBackend)}
    assert freed == {gpu: [True], gpu + 1: []}
    assert await local.api.ok("FreeBackendMemory", backend=str(parent)) == {"result": True, "count": 0}


async def test_children_follow_the_remote_backends(local: Server, remote: Server) -> None:
    gpu = await add_backend(remote.api, "swarmkeeper_dummy", "gpu", Address="dummy")
    parent = await add_swarm(local.api, remote.url)
    (first,) = await wait_children(local.api, parent, 1)
    await remote.api.ok("ToggleBackend", backend_id=gpu, enabled=False)
    await wait_listing(local.api, lambda entries: not children(entries, parent), "the child removed")
    await remote.api.ok("ToggleBackend", backend_id=gpu, enabled=True)
    (again,) = await wait_children(local.api, parent, 1)
    assert again["id"] < first["id"] and again["remote_id"] == gpu  # a new child, a new non-real id


@pytest.mark.parametrize("action", ["delete", "disable", "edit"])
async def test_children_go_with_their_parent(local: Server, remote: Server, action: str) -> None:
    await add_backend(remote.api, "swarmkeeper_dummy", "gpu", Address="dummy")
    parent = await add_swarm(local.api, remote.url)
    await wait_children(local.api, parent, 1)
    if action == "delete":
        await local.api.ok("DeleteBackend", backend_id=parent)
    elif action == "disable":
        await local.api.ok("ToggleBackend", backend_id=parent, enabled=False)
    else:
        await local.api.ok("EditBackend", backend_id=parent, title="", settings={"Address": ""})
    entries = await listing(local.api)
    assert children(entries, parent) == []
    assert all(entry["id"] >= 0 for entry in entries.values())


async def test_models_come_from_the_remote(local: Server, remote: Server) -> None:
    await add_backend(remote.api, "test_models", "models", Address="x",
                      Models="Stable-Diffusion=sdxl/base.safetensors,flux.gguf;LoRA=style.safetensors")
    parent = await add_swarm(local.api, remote.url)
    await wait_children(local.api, parent, 1)
    models = await local.api.ok("ListModels", path="", depth=5)
    assert [(f["name"], f["local"]) for f in models["files"]] == [("flux.gguf", False),
                                                                   ("sdxl/base.safetensors", False)]
    assert models["folders"] == ["sdxl"]
    loras = await local.api.ok("ListModels", path="", depth=5, subtype="LoRA")
    assert [f["name"] for f in loras["files"]] == ["style.safetensors"]
    only_local = await local.api.ok("ListModels", path="", depth=5, allowRemote=False)
    assert only_local == {"folders": [], "files": []}


async def test_select_model_goes_to_the_remote_backend(local: Server, remote: Server) -> None:
    models = await add_backend(remote.api, "test_models", "models", Address="x",
                               Models="Stable-Diffusion=a.safetensors")
    parent = await add_swarm(local.api, remote.url)
    (child,) = await wait_children(local.api, parent, 1)
    assert await local.api.ok("SelectModel", model="a", backendId=str(child["id"])) == {"success": True}
    backend = remote.services.registry.get(models)
    assert backend is not None and isinstance(backend.backend, ModelBackend)
    assert backend.backend.loads == ["a.safetensors"]
    entry = (await listing(local.api))[str(child["id"])]
    assert entry["current_model"] == "a.safetensors"


async def test_connecting_to_itself_is_refused(local: Server) -> None:
    parent = await add_swarm(local.api, local.url)
    entry = await wait_parent(local.api, parent, "errored", "Swarm connected to itself, backend load failed.")
    assert f"{local.url} is this server's own address" in entry["status_reason"]
    assert children(await listing(local.api), parent) == []


async def test_a_loop_through_another_server_is_refused(local: Server, remote: Server) -> None:
    await add_backend(local.api, "swarmkeeper_dummy", "a gpu", Address="dummy")
    back = await add_swarm(remote.api, local.url)
    await wait_children(remote.api, back, 1)
    parent = await add_swarm(local.api, remote.url)
    entry = await wait_parent(local.api, parent, "errored", "Swarm connection loop")
    assert f"this server → {remote.url} → this server" in entry["status_reason"]
    assert children(await listing(local.api), parent) == []


async def test_two_servers_can_share_their_own_backends(local: Server, remote: Server) -> None:
    """A → B and B → A: each uses the other's own backends, and nothing cascades."""
    await add_backend(local.api, "swarmkeeper_dummy", "a gpu", Address="dummy")
    await add_backend(remote.api, "swarmkeeper_dummy", "b gpu", Address="dummy")
    a_parent = await add_swarm(local.api, remote.url)
    b_parent = await add_swarm(remote.api, local.url)
    await wait_children(local.api, a_parent, 1)
    await wait_children(remote.api, b_parent, 1)
    for _ in range(3):  # several rounds of looking at each other change nothing
        await local.api.ok("TriggerRefresh")
        await remote.api.ok("TriggerRefresh")
    (a_child,) = children(await listing(local.api), a_parent)
    (b_child,) = children(await listing(remote.api), b_parent)
    assert a_child["title"].endswith("b gpu") and a_child["remote_type"] == "swarmkeeper_dummy"
    assert b_child["title"].endswith("a gpu") and b_child["remote_type"] == "swarmkeeper_dummy"
    assert (await listing(local.api))[str(a_parent)]["status"] == "running"


async def test_unreachable_remote_is_errored_or_idle(local: Server) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    errored = await add_swarm(local.api, address)
    idle = await add_swarm(local.api, address, AllowIdle=True)
    entry = await wait_parent(local.api, errored, "errored", "Connection refused")
    assert entry["status_reason"].startswith(f"Cannot use the remote Swarm at {address}: Connection refused")
    await wait_parent(local.api, idle, "idle", "Connection refused")
