"""The model routes (swarmkeeper/api/model_routes.py): ListModels, TriggerRefresh and SelectModel
with SwarmUI's parameters, errors and answer shapes, over the backends' own model lists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from swarmkeeper.backends.status import BackendStatus
from tests.accounts_support import accounts_server
from tests.model_backend import ModelBackend
from tests.servers import APIClient, in_process
from tests.swarm_support import TYPES, add_backend, swarm_config

SD = "Stable-Diffusion=base.safetensors,sdxl/one.safetensors,sdxl/deep/two.safetensors,flux/a.gguf"
MODEL_KEYS = ["name", "title", "author", "description", "preview_image", "loaded", "architecture", "class",
              "compat_class", "resolution", "standard_width", "standard_height", "license", "date",
              "prediction_type", "usage_hint", "trigger_phrase", "merged_from", "tags", "is_supported_model_format",
              "is_negative_embedding", "local", "time_created", "time_modified", "hash", "hash_sha256",
              "special_format"]


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[APIClient]:
    async with in_process(swarm_config(data_dir)) as client:
        backend = await add_backend(client, "test_models", "models", Address="x", Models=SD + ";LoRA=z.safetensors")
        await client.wait_status(backend, "running")
        yield client


def names(answer: dict) -> list[str]:
    return [entry["name"] for entry in answer["files"]]


def model_of(api: APIClient) -> ModelBackend:
    assert api.services is not None
    backend = api.services.registry.get(0)
    assert backend is not None and isinstance(backend.backend, ModelBackend)
    return backend.backend


async def test_root_listing_by_depth(api: APIClient) -> None:
    top = await api.ok("ListModels", path="", depth=1)
    assert names(top) == ["base.safetensors"] and top["folders"] == ["flux", "sdxl"]
    deep = await api.ok("ListModels", path="", depth=3)
    assert names(deep) == ["base.safetensors", "flux/a.gguf", "sdxl/deep/two.safetensors", "sdxl/one.safetensors"]
    assert deep["folders"] == ["flux", "sdxl", "sdxl/deep"]
    assert list(deep["files"][0]) == MODEL_KEYS
    assert deep["files"][0]["local"] is True and deep["files"][0]["is_supported_model_format"] is True


async def test_listing_inside_a_folder(api: APIClient) -> None:
    inside = await api.ok("ListModels", path="\\sdxl//", depth=1)
    assert names(inside) == ["sdxl/one.safetensors"] and inside["folders"] == ["deep"]
    assert await api.ok("ListModels", path="nowhere", depth=5) == {"folders": [], "files": []}


async def test_sorting_and_other_categories(api: APIClient) -> None:
    by_title = await api.ok("ListModels", path="", depth=5, sortBy="title", sortReverse=True)
    assert names(by_title) == ["sdxl/deep/two.safetensors", "sdxl/one.safetensors", "base.safetensors",
                               "flux/a.gguf"]
    assert names(await api.ok("ListModels", path="", depth=1, subtype="LoRA")) == ["z.safetensors"]
    assert await api.ok("ListModels", path="", depth=1, subtype="Wildcards") == {"folders": [], "files": []}
    assert await api.ok("ListModels", path="", depth=1, subtype="VAE") == {"folders": [], "files": []}


async def test_listing_refusals(api: APIClient) -> None:
    assert await api.error("ListModels", path="", depth=1, sortBy="Size") == "Invalid sort mode 'Size'."
    assert await api.error("ListModels", path="", depth=1, subtype="Checkpoints") == "Invalid sub-type."
    assert await api.error("ListModels", depth=1) == "Missing required parameter 'path'"
    assert await api.error("ListModels", path="", depth="deep") == \
        "Invalid value 'deep' for parameter 'depth', must be type 'Int32'"


async def test_loaded_flag_follows_the_current_model(api: APIClient) -> None:
    model_of(api).current_model = "base.safetensors"
    listed = await api.ok("ListModels", path="", depth=1)
    assert [(entry["name"], entry["loaded"]) for entry in listed["files"]] == [("base.safetensors", True)]


async def test_trigger_refresh_rereads_every_backend(api: APIClient) -> None:
    answer = await api.ok("TriggerRefresh")
    assert model_of(api).refreshes == 1
    assert list(answer) == ["list", "groups", "models", "model_compat_classes", "model_classes", "wildcards",
                            "param_edits"]
    assert answer["models"]["LoRA"] == [["z.safetensors", None]]
    assert answer["models"]["Stable-Diffusion"][0] == ["base.safetensors", None]
    await api.ok("TriggerRefresh", strong=False)
    assert model_of(api).refreshes == 1  # a weak refresh only reads


async def test_select_model(api: APIClient) -> None:
    assert await api.error("SelectModel", model=" ") == "Invalid empty name."
    assert await api.error("SelectModel", model="missing") == "Model not found."
    assert await api.ok("SelectModel", model="sdxl/one") == {"success": True}
    assert await api.ok("SelectModel", model="base.safetensors", backendId="0") == {"success": True}
    assert await api.error("SelectModel", model="base.safetensors", backendId="7") == "Model failed to load."
    assert model_of(api).loads == ["sdxl/one.safetensors", "base.safetensors"]


async def test_running_entries_always_carry_can_load_models(api: APIClient) -> None:
    """A remote SwarmUI reads can_load_models on every running entry, text-to-image or not."""
    llm = await add_backend(api, "test_llm", "llm", Address="x")
    entry = await api.wait_status(llm, "running")
    assert entry["can_load_models"] is False and "current_model" not in entry
    await api.ok("ToggleBackend", backend_id=llm, enabled=False)
    assert "can_load_models" not in (await api.ok("ListBackends"))[str(llm)]


async def test_refresh_needs_control_model_refresh(data_dir: Path) -> None:
    async with accounts_server(data_dir, backend_type_modules=TYPES) as server:
        manager = server.services.manager
        record = await manager.add("test_models")
        await manager.edit(record.id, "", {"Address": "x", "Models": SD})
        for _ in range(1000):
            if record.status is BackendStatus.RUNNING:
                break
            await asyncio.sleep(0.01)
        assert record.status is BackendStatus.RUNNING
        await server.add_user("casual", "user")
        await server.add_user("power", "poweruser")
        answer = await server.ok("TriggerRefresh", session=await server.session_for("casual"))
        assert isinstance(record.backend, ModelBackend) and record.backend.refreshes == 0
        assert answer["models"]["Stable-Diffusion"][0] == ["base.safetensors", None]
        await server.ok("TriggerRefresh", session=await server.session_for("power"))
        assert record.backend.refreshes == 1
        casual = await server.session_for("casual")
        refused = await server.call("SelectModel", {"model": "base"}, session=casual)
        assert refused.json() == {"error_id": "bad_permissions", "error": "You lack permissions for this route."}
