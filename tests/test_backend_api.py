"""The eight BackendAPI routes on a real server over loopback: every field, default, error and
result string of the reference (§2, §3, §14), with the dummy backend type."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from swarmkeeper.types import SECRET_PLACEHOLDER
from tests.servers import APIClient, LoopbackServer, on_loopback, test_config

BACKEND_KEYS = ["type", "status", "id", "settings", "modcount", "features", "enabled", "title", "max_usages",
                "seconds_since_used", "time_since_used", "can_load_models"]


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LoopbackServer]:
    async with on_loopback(test_config(data_dir)) as running:
        yield running


@pytest.fixture
async def api(server: LoopbackServer) -> AsyncIterator[APIClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        client = APIClient(http, server.services)
        await client.new_session()
        yield client


async def add_running(api: APIClient, **settings: object) -> dict:
    added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=added["id"], title="", settings={"Address": "dummy", **settings})
    return await api.wait_status(added["id"], "running")


# --- ListBackendTypes ---

async def test_list_backend_types_shape(api: APIClient) -> None:
    types = (await api.ok("ListBackendTypes"))["list"]
    dummy = next(t for t in types if t["id"] == "swarmkeeper_dummy")
    assert list(dummy) == ["id", "name", "description", "settings", "is_standard"]
    assert [s["name"] for s in dummy["settings"]] == ["Address", "Token", "OverQueue", "Ratio", "Flag", "Mode",
                                                      "InitSeconds"]
    for setting in dummy["settings"]:
        assert list(setting) == ["name", "type", "description", "placeholder", "is_secret", "values", "value_names"]
    by_name = {s["name"]: s for s in dummy["settings"]}
    assert by_name["Flag"]["type"] == "boolean"
    assert by_name["OverQueue"]["type"] == "integer"
    assert by_name["Ratio"]["type"] == "decimal"
    assert by_name["Token"]["is_secret"] is True
    assert by_name["Address"]["values"] is None and by_name["Address"]["value_names"] is None
    assert by_name["Mode"]["type"] == "dropdown"
    assert by_name["Mode"]["values"][:2] == ["ok", "fail"]
    assert by_name["Mode"]["value_names"][:2] == ["Succeeds", "Fails every time"]


# --- AddNewBackend ---

async def test_add_new_backend_returns_waiting_with_defaults(api: APIClient) -> None:
    added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    assert list(added)[: len(BACKEND_KEYS)] == BACKEND_KEYS
    assert "current_model" not in added
    assert added["id"] == 0 and added["status"] == "waiting" and added["enabled"] is True
    assert added["title"] == "" and added["modcount"] == 0 and added["time_since_used"] == "Never"
    assert added["settings"] == {"Address": "", "Token": "", "OverQueue": 1, "Ratio": 0.5, "Flag": False,
                                 "Mode": "ok", "InitSeconds": 0.0}
    # blank address: enabled, yet disabled, with the reason
    entry = await api.wait_status(0, "disabled")
    assert entry["enabled"] is True and entry["status_reason"] == "No address is set."


async def test_add_unknown_type(api: APIClient) -> None:
    assert await api.error("AddNewBackend", type_id="nope") == "Invalid backend type: nope"
    assert await api.error("AddNewBackend", type_id="SWARMKEEPER_DUMMY") == "Invalid backend type: SWARMKEEPER_DUMMY"
    assert await api.error("AddNewBackend") == "Missing required parameter 'type_id'"
    assert await api.ok("ListBackends") == {}


async def test_ids_count_up_and_are_never_reused(api: APIClient) -> None:
    ids = [(await api.ok("AddNewBackend", type_id="swarmkeeper_dummy"))["id"] for _ in range(3)]
    assert ids == [0, 1, 2]
    await api.ok("DeleteBackend", backend_id=2)
    assert (await api.ok("AddNewBackend", type_id="swarmkeeper_dummy"))["id"] == 3


async def test_add_skips_an_id_taken_by_new_id(api: APIClient) -> None:
    """Upstream bug (§3.3): SwarmUI hands out an id in use after a re-key, and loses the backend."""
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=0, title="moved", settings={}, new_id=1)
    added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    assert added["id"] == 2
    assert sorted(await api.ok("ListBackends")) == ["1", "2"]


# --- ListBackends ---

async def test_list_is_keyed_by_id_strings_in_ascending_order(api: APIClient) -> None:
    for _ in range(3):
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=0, title="", settings={}, new_id=10)
    listing = await api.ok("ListBackends")
    assert list(listing) == ["1", "2", "10"]
    assert [entry["id"] for entry in listing.values()] == [1, 2, 10]


async def test_full_data_adds_current_model(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    plain = await api.ok("ListBackends")
    full = await api.ok("ListBackends", full_data=True)
    assert "current_model" not in plain["0"]
    assert full["0"]["current_model"] is None


async def test_secret_reads_back_masked_and_survives_an_echo(api: APIClient, server: LoopbackServer) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    edited = await api.ok("EditBackend", backend_id=0, title="t", settings={"Token": "hunter2"})
    assert edited["settings"]["Token"] == SECRET_PLACEHOLDER
    # the web UI sends every field back, the secret as the placeholder
    echoed = dict(edited["settings"], Address="changed")
    await api.ok("EditBackend", backend_id=0, title="t", settings=echoed)
    record = server.services.registry.get(0)
    assert record is not None and record.settings.Token == "hunter2" and record.settings.Address == "changed"
    cleared = await api.ok("EditBackend", backend_id=0, title="t", settings={"Token": ""})
    assert cleared["settings"]["Token"] == ""


async def test_last_used_text(api: APIClient, server: LoopbackServer) -> None:
    await add_running(api)
    record = server.services.registry.get(0)
    assert record is not None
    server.services.registry.claim(record)
    server.services.registry.release(record)
    entry = (await api.ok("ListBackends"))["0"]
    assert entry["time_since_used"] == "0 seconds from now" and entry["seconds_since_used"] == 0
    record.last_used = (record.last_used or 0) - 65
    entry = (await api.ok("ListBackends"))["0"]
    assert entry["seconds_since_used"] == 65 and entry["time_since_used"] == "1 minute and 5 seconds ago"


# --- EditBackend ---

async def test_edit_is_a_partial_overlay_that_bumps_modcount(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    first = await api.ok("EditBackend", backend_id=0, title="One", settings={"OverQueue": "3", "Flag": True})
    assert first["modcount"] == 1 and first["title"] == "One" and first["status"] == "waiting"
    second = await api.ok("EditBackend", backend_id=0, title="", settings={"Ratio": "0.25", "Unknown": 5,
                                                                            "flag": False})
    assert second["modcount"] == 2 and second["title"] == ""
    assert second["settings"]["OverQueue"] == 3 and second["settings"]["Flag"] is True
    assert second["settings"]["Ratio"] == 0.25


async def test_edit_needs_title_and_settings(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    assert await api.error("EditBackend", backend_id=0, settings={}) == "Missing required parameter 'title'"
    assert await api.error("EditBackend", backend_id=0, title="x") == "Missing settings."
    assert await api.error("EditBackend", backend_id=0, title="x", settings=[1]) == "Missing settings."
    assert await api.error("EditBackend", backend_id=0, title="x", settings="abc") == "Missing settings."
    null_title = await api.ok("EditBackend", backend_id=0, title=None, settings={})
    assert null_title["title"] == ""


async def test_edit_errors_in_swarmui_order(api: APIClient) -> None:
    for _ in range(2):
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    assert await api.error("EditBackend", backend_id=7, title="", settings={}) == "Invalid backend ID 7"
    # the in-use check runs before the existence check
    assert await api.error("EditBackend", backend_id=7, title="", settings={}, new_id=1) == (
        "Backend ID 1 is already in use.")
    assert await api.error("EditBackend", backend_id=0, title="", settings={}, new_id=1) == (
        "Backend ID 1 is already in use.")
    same = await api.ok("EditBackend", backend_id=0, title="", settings={}, new_id=0)
    assert same["id"] == 0
    ignored = await api.ok("EditBackend", backend_id=0, title="", settings={}, new_id=-5)
    assert ignored["id"] == 0
    assert await api.error("EditBackend", backend_id=0, title="", settings={}, new_id="x") == (
        "Invalid value 'x' for parameter 'new_id', must be type 'Int32'")


async def test_new_id_rekeys(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    moved = await api.ok("EditBackend", backend_id=0, title="", settings={}, new_id=5)
    assert moved["id"] == 5
    assert list(await api.ok("ListBackends")) == ["5"]
    assert await api.error("ToggleBackend", backend_id=0, enabled=False) == "Invalid backend ID 0"


async def test_bad_setting_names_the_setting_and_changes_nothing(api: APIClient, server: LoopbackServer) -> None:
    before = await add_running(api, OverQueue="2")
    record = server.services.registry.get(0)
    assert record is not None
    shutdowns = record.backend.shutdowns
    for settings, name, kind in [({"OverQueue": "abc"}, "OverQueue", "Int32"), ({"Ratio": "x"}, "Ratio", "Double"),
                                 ({"Flag": "yes"}, "Flag", "Boolean"), ({"Address": "a", "OverQueue": None},
                                                                        "OverQueue", "Int32")]:
        error = await api.error("EditBackend", backend_id=0, title="changed", settings=settings)
        assert f"for setting '{name}', must be type '{kind}'" in error
    error = await api.error("EditBackend", backend_id=0, title="changed", settings={"Mode": "sideways"})
    assert "setting 'Mode'" in error and "ok, fail" in error
    after = (await api.ok("ListBackends"))["0"]
    assert after["status"] == "running" and after["modcount"] == before["modcount"]
    assert after["title"] == before["title"] and after["settings"] == before["settings"]
    assert record.backend.shutdowns == shutdowns


async def test_oversized_values_are_refused(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    huge = "x" * 70_000
    assert "too long" in await api.error("EditBackend", backend_id=0, title=huge, settings={})
    assert "too long" in await api.error("EditBackend", backend_id=0, title="", settings={"Address": huge})
    assert (await api.ok("ListBackends"))["0"]["settings"]["Address"] == ""


async def test_hostile_text_is_kept_as_text(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    hostile = "<script>alert(1)</script> \\x #: ; DROP TABLE backends; --\u202e"  # control characters: see
    # tests/test_unstorable_text.py
    edited = await api.ok("EditBackend", backend_id=0, title=hostile, settings={"Address": hostile})
    assert edited["title"] == hostile and edited["settings"]["Address"] == hostile


# --- ToggleBackend ---

async def test_toggle(api: APIClient) -> None:
    await add_running(api)
    assert await api.ok("ToggleBackend", backend_id=0, enabled=True) == {"result": "No change."}
    assert await api.ok("ToggleBackend", backend_id=0, enabled=False) == {"result": "Success."}
    entry = (await api.ok("ListBackends"))["0"]
    assert entry["enabled"] is False and entry["status"] == "disabled"
    assert await api.ok("ToggleBackend", backend_id=0, enabled=False) == {"result": "No change."}
    assert await api.ok("ToggleBackend", backend_id=0, enabled=True) == {"result": "Success."}
    await api.wait_status(0, "running")
    assert await api.error("ToggleBackend", backend_id=9, enabled=True) == "Invalid backend ID 9"
    assert await api.error("ToggleBackend", backend_id=0) == "Missing required parameter 'enabled'"


async def test_disabling_an_errored_backend_leaves_it_errored(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=0, title="", settings={"Address": "x", "Mode": "config"})
    await api.wait_status(0, "errored")
    await api.ok("ToggleBackend", backend_id=0, enabled=False)
    entry = (await api.ok("ListBackends"))["0"]
    assert entry["enabled"] is False and entry["status"] == "errored"


async def test_toggle_waits_while_the_backend_is_saturated(api: APIClient, server: LoopbackServer) -> None:
    await add_running(api, OverQueue=0)
    record = server.services.registry.get(0)
    assert record is not None
    server.services.registry.claim(record)
    toggle = asyncio.create_task(api.ok("ToggleBackend", backend_id=0, enabled=False))
    await asyncio.sleep(0.3)
    assert not toggle.done()
    server.services.registry.release(record)
    assert await asyncio.wait_for(toggle, 5) == {"result": "Success."}


# --- DeleteBackend ---

async def test_delete(api: APIClient, server: LoopbackServer) -> None:
    await add_running(api)
    record = server.services.registry.get(0)
    assert record is not None
    shutdowns = record.backend.shutdowns
    assert await api.ok("DeleteBackend", backend_id=0) == {"result": "Deleted."}
    assert await api.ok("DeleteBackend", backend_id=0) == {"result": "Already didn't exist."}
    assert await api.ok("ListBackends") == {}
    assert record.backend.shutdowns == shutdowns + 1


# --- RestartBackends ---

async def test_restart_counts_running_and_errored_only(api: APIClient) -> None:
    await add_running(api)
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")  # 1: disabled (no address)
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=2, title="", settings={"Address": "x", "Mode": "config"})
    await api.wait_status(1, "disabled")
    await api.wait_status(2, "errored")
    assert await api.ok("RestartBackends") == {"result": "Success.", "count": 2}
    await api.wait_status(0, "running")
    assert await api.ok("RestartBackends", backend="0") == {"result": "Success.", "count": 1}
    await api.wait_status(0, "running")
    assert await api.ok("RestartBackends", backend="00") == {"result": "Success.", "count": 0}
    assert await api.ok("RestartBackends", backend=0) == {"result": "Success.", "count": 1}
    assert await api.ok("RestartBackends", backend="99") == {"result": "Success.", "count": 0}


async def test_force_restart_recovers_a_backend_stuck_loading(api: APIClient, server: LoopbackServer) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=0, title="", settings={"Address": "x", "Mode": "hang"})
    await api.wait_status(0, "loading")
    assert await api.ok("RestartBackends", backend="0") == {"result": "Success.", "count": 0}
    record = server.services.registry.get(0)
    assert record is not None
    record.settings = type(record.settings)(Address="x")  # the hang is fixed: the restart must get through
    assert await api.ok("RestartBackends", backend="0", force=True) == {"result": "Success.", "count": 1}
    await api.wait_status(0, "running")


# --- FreeBackendMemory ---

async def test_free_memory(api: APIClient, server: LoopbackServer) -> None:
    assert await api.ok("FreeBackendMemory") == {"result": False, "count": 0}
    await add_running(api)
    await add_running(api, Mode="nofree")
    await add_running(api, Mode="freeerror")
    assert await api.ok("FreeBackendMemory", system_ram=True) == {"result": True, "count": 1}
    record = server.services.registry.get(0)
    assert record is not None and record.backend.freed == [True]
    assert await api.ok("FreeBackendMemory", backend="1") == {"result": True, "count": 0}
    assert await api.ok("FreeBackendMemory", backend="5") == {"result": False, "count": 0}


# --- GetCurrentStatus ---

async def test_current_status(api: APIClient) -> None:
    empty = await api.ok("GetCurrentStatus")
    assert empty == {"status": {"waiting_gens": 0, "loading_models": 0, "waiting_backends": 0, "live_gens": 0},
                     "backend_status": {"status": "empty", "class": "error", "message": (
                         "No backends present. You must configure backends in the Backends section of the Server "
                         "tab before you can continue."), "any_loading": False},
                     "supported_features": []}
    await add_running(api)
    running = await api.ok("GetCurrentStatus")
    assert running["backend_status"] == {"status": "running", "class": "", "message": "", "any_loading": False}
    assert running["supported_features"] == ["dummy"]
    await api.ok("ToggleBackend", backend_id=0, enabled=False)
    disabled = await api.ok("GetCurrentStatus")
    assert disabled["backend_status"]["status"] == "all_disabled"
