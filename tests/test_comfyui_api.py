"""The ``comfyui_api`` type through the API, against the fake ComfyUI (which answers as the recorded
traffic of a real one): types and settings, init through object_info, bad addresses, faults,
AllowIdle and the health monitor, FreeBackendMemory, and many backends at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from swarmkeeper.backends.comfyui_info import parse_object_info
from swarmkeeper.backends.tuning import ComfyTimings
from swarmkeeper_doubles.fake_comfyui import FakeComfyUI, run_fake_comfyui
from tests.comfy_backends import add_backend, comfy_server
from tests.ports import free_port
from tests.servers import APIClient

API = "comfyui_api"


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    async with run_fake_comfyui(job_seconds=0.02) as server:
        yield server


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[APIClient]:
    async with comfy_server(data_dir) as client:
        yield client


def object_info_calls(fake: FakeComfyUI) -> int:
    return len(fake.calls_to("/object_info", "GET"))


# --- the two types, as ListBackendTypes shows them ---


async def test_types_are_listed_in_swarmui_order_with_swarmui_flags(api: APIClient) -> None:
    listed = {t["id"]: t for t in (await api.ok("ListBackendTypes"))["list"]}
    ids = [type_id for type_id in listed if not type_id.startswith("swarmkeeper_")]
    assert ids == ["swarmswarmbackend", "autoscalingbackend", "comfyui_api", "comfyui_selfstart"]
    by_url, self_start = listed["comfyui_api"], listed["comfyui_selfstart"]
    assert (by_url["name"], by_url["is_standard"]) == ("ComfyUI API By URL", False)
    assert (self_start["name"], self_start["is_standard"]) == ("ComfyUI Self-Starting", True)
    assert by_url["description"] == ("A backend powered by a pre-existing installation of ComfyUI, referenced via "
                                     "API base URL.")
    assert [(s["name"], s["type"]) for s in by_url["settings"]] == [
        ("Address", "text"), ("AllowIdle", "boolean"), ("OverQueue", "integer"), ("EnableFrontendDev", "boolean")]
    assert by_url["settings"][0]["placeholder"] == "ComfyUI's address..."
    assert [(s["name"], s["type"]) for s in self_start["settings"]] == [
        ("StartScript", "text"), ("ExtraArgs", "text"), ("DisableInternalArgs", "boolean"), ("AutoUpdate", "dropdown"),
        ("UpdateManagedNodes", "dropdown"), ("FrontendVersion", "dropdown"), ("EnablePreviews", "dropdown"),
        ("GPU_ID", "text"), ("OverQueue", "integer"), ("AutoRestart", "boolean")]
    dropdowns = {s["name"]: (s["values"], s["value_names"]) for s in self_start["settings"] if s["values"]}
    assert dropdowns["FrontendVersion"] == (["Latest", "None", "LatestSwarmValidated", "Legacy"],
                                            ["Latest", "None", "Latest Swarm Validated", "Legacy (Pre Sept 2024)"])
    assert dropdowns["EnablePreviews"] == (["false", "true", "taesd"],
                                           ["Disabled", "Enabled (fast latent2rgb)", "Enabled HD (slow TAESD)"])
    assert dropdowns["AutoUpdate"] == dropdowns["UpdateManagedNodes"] == (
        ["true", "aggressive", "false"], ["Always Update", "Always Aggressively Update (Force-Update)", "Don't Update"])


async def test_defaults_of_new_backends(api: APIClient) -> None:
    by_url = await api.ok("AddNewBackend", type_id=API)
    self_start = await api.ok("AddNewBackend", type_id="comfyui_selfstart")
    assert by_url["settings"] == {"Address": "", "AllowIdle": False, "OverQueue": 1, "EnableFrontendDev": False}
    assert self_start["settings"] == {
        "StartScript": "", "ExtraArgs": "", "DisableInternalArgs": False, "AutoUpdate": "false",
        "UpdateManagedNodes": "false", "FrontendVersion": "LatestSwarmValidated", "EnablePreviews": "true",
        "GPU_ID": "0", "OverQueue": 1, "AutoRestart": True}
    by_url_entry = await api.wait_status(by_url["id"], "disabled")
    self_start_entry = await api.wait_status(self_start["id"], "disabled")
    assert "No address is set" in by_url_entry["status_reason"] and by_url_entry["enabled"] is True
    assert "No start script is set" in self_start_entry["status_reason"]


# --- init ---


async def test_reaches_running_with_the_features_and_models_of_its_comfyui(api: APIClient, fake: FakeComfyUI) -> None:
    backend_id = await add_backend(api, API, Address=fake.url + "/")
    entry = await api.wait_status(backend_id, "running")
    expected = parse_object_info(fake.engine.object_info)
    assert set(entry["features"]) == expected.features and "comfyui" in entry["features"]
    assert entry["max_usages"] == 2 and entry["status_reason"] == "" and entry["api_url"] == fake.url
    assert api.services is not None
    backend = api.services.registry.get(backend_id).backend  # type: ignore[union-attr]
    assert backend.node_classes == frozenset(fake.engine.object_info)
    assert backend.models["VAE"] == ("pixel_space",) and backend.object_info.keys() == fake.engine.object_info.keys()


@pytest.mark.parametrize(("over_queue", "max_usages"), [(-1, 0), (0, 1), (3, 4), (-5, 0)])
async def test_over_queue_sets_max_usages(api: APIClient, fake: FakeComfyUI, over_queue: int, max_usages: int) -> None:
    backend_id = await add_backend(api, API, Address=fake.url, OverQueue=str(over_queue))
    assert (await api.wait_status(backend_id, "running"))["max_usages"] == max_usages


async def test_enable_frontend_dev_talks_to_the_api_prefix(api: APIClient, fake: FakeComfyUI) -> None:
    backend_id = await add_backend(api, API, Address=fake.url, EnableFrontendDev=True)
    entry = await api.wait_status(backend_id, "running")
    assert entry["api_url"] == fake.url + "/api"
    assert [call.path for call in fake.calls_to("/object_info")] == ["/api/object_info"]


@pytest.mark.parametrize(("address", "problem"), [
    ("localhost:8188", "must start with http:// or https://"),
    ("ftp://example.com", "must start with http:// or https://"),
    ("http://", "has no host"),
    ("http://example.com:99999", "Invalid backend address"),
    ("http://example.com/?x=1", "must not have a query"),
])
async def test_an_address_that_is_not_an_http_url_is_a_clear_error(api: APIClient, address: str, problem: str) -> None:
    backend_id = await add_backend(api, API, Address=address)
    entry = await api.wait_status(backend_id, "errored")
    assert entry["status_reason"].startswith("Address setting: ") and problem in entry["status_reason"]
    assert entry["init_attempts"] == 1  # no retry: it can never work
    assert entry["settings"]["Address"] == address  # kept as typed, so the user sees what to fix


@pytest.mark.parametrize(("fault", "reason"), [
    ("garbage", "answered /object_info with HTML - is this ComfyUI?"),
    ("close", "closed the connection without answering"),
    ("hang", "did not answer within 2 s"),
])
async def test_a_comfyui_that_misbehaves_gives_a_reason_and_the_server_stays_responsive(
        api: APIClient, fake: FakeComfyUI, fault: str, reason: str) -> None:
    fake.set_fault(fault)
    backend_id = await add_backend(api, API, Address=fake.url)
    others = [await add_backend(api, "swarmkeeper_dummy", Address="x") for _ in range(3)]
    for other in others:  # the server goes on answering while the bad backend is being tried
        await api.wait_status(other, "running")
    entry = await api.wait_status(backend_id, "errored", timeout=20)
    assert reason in entry["status_reason"] and entry["status_reason"].startswith(f"ComfyUI at {fake.url}: ")
    assert entry["status_reason"].endswith("(gave up after 1 attempts)")


async def test_unreachable_without_allow_idle_is_retried_then_errored(data_dir: Path) -> None:
    async with comfy_server(data_dir, attempts=1) as api:
        backend_id = await add_backend(api, API, Address=f"http://127.0.0.1:{free_port()}")
        entry = await api.wait_status(backend_id, "errored", timeout=20)
    assert entry["init_attempts"] == 2
    assert "Connection refused - is the backend running, or is the address correct?" in entry["status_reason"]


# --- AllowIdle and the health monitor ---


async def test_allow_idle_unreachable_is_idle_and_becomes_running_when_comfyui_answers(api: APIClient) -> None:
    port = free_port()
    backend_id = await add_backend(api, API, Address=f"http://127.0.0.1:{port}", AllowIdle=True)
    idle = await api.wait_status(backend_id, "idle")
    assert "is not answering (Connection refused" in idle["status_reason"]
    assert "AllowIdle is on" in idle["status_reason"]
    assert idle["features"] == []
    async with run_fake_comfyui(port=port) as late:
        entry = await api.wait_status(backend_id, "running")
        assert object_info_calls(late) == 1  # re-read on return (SwarmUI does not)
        assert "comfyui" in entry["features"] and entry["status_reason"] == ""
        assert len(late.calls_to("/features")) >= 1
    idle_again = await api.wait_status(backend_id, "idle")
    assert "is not answering" in idle_again["status_reason"]
    assert "comfyui" in idle_again["features"]  # what it had is remembered while it is away


async def test_without_allow_idle_a_comfyui_that_stops_answering_shows_errored_and_recovers(
        api: APIClient, fake: FakeComfyUI) -> None:
    backend_id = await add_backend(api, API, Address=fake.url)
    await api.wait_status(backend_id, "running")
    fake.set_fault("close")
    lost = await api.wait_status(backend_id, "errored")
    assert lost["status_reason"].startswith(f"ComfyUI at {fake.url} stopped answering (")
    assert "turn AllowIdle on" in lost["status_reason"]
    before = object_info_calls(fake)
    fake.set_fault(None)
    back = await api.wait_status(backend_id, "running")
    assert back["status_reason"] == "" and object_info_calls(fake) == before + 1


async def test_an_errored_backend_from_init_is_left_alone_by_the_monitor(api: APIClient, fake: FakeComfyUI) -> None:
    fake.set_fault("garbage")
    backend_id = await add_backend(api, API, Address=fake.url)
    await api.wait_status(backend_id, "errored")
    fake.set_fault(None)
    await asyncio.sleep(0.5)  # several monitor periods: nothing may bring it back but the user
    entry = (await api.ok("ListBackends"))[str(backend_id)]
    assert entry["status"] == "errored" and fake.calls_to("/features") == []


# --- FreeBackendMemory ---


async def test_free_memory_reaches_comfyui_and_counts_only_the_backends_that_freed(data_dir: Path) -> None:
    slow_monitor = ComfyTimings(timeout=2.0, monitor_interval=3600)
    async with comfy_server(data_dir, timings=slow_monitor) as api, \
            run_fake_comfyui() as first, run_fake_comfyui() as second:
        one = await add_backend(api, API, Address=first.url)
        two = await add_backend(api, API, Address=second.url)
        for backend_id in (one, two):
            await api.wait_status(backend_id, "running")
        assert await api.ok("FreeBackendMemory", system_ram=True) == {"result": True, "count": 2}
        assert [call.body for call in first.calls_to("/free", "POST")] == [{"unload_models": True, "free_memory": True}]
        second.set_fault("close")
        assert await api.ok("FreeBackendMemory") == {"result": True, "count": 1}
        assert first.calls_to("/free", "POST")[-1].body == {"unload_models": True, "free_memory": False}
        assert await api.ok("FreeBackendMemory", backend=str(two)) == {"result": True, "count": 0}
        assert await api.ok("FreeBackendMemory", backend="99") == {"result": False, "count": 0}


# --- many at once ---


async def test_many_backends_at_once_all_reach_running(api: APIClient) -> None:
    async with run_fake_comfyui() as a, run_fake_comfyui() as b, run_fake_comfyui() as c:
        fakes = [a, b, c]
        ids = [await add_backend(api, API, Address=fakes[n % 3].url, title=f"gpu{n}") for n in range(24)]
        listing: dict[str, Any] = {}
        for backend_id in ids:
            listing[str(backend_id)] = await api.wait_status(backend_id, "running", timeout=30)
        assert {entry["title"] for entry in listing.values()} == {f"gpu{n}" for n in range(24)}
        assert sum(object_info_calls(fake) for fake in fakes) == 24
        assert await api.ok("FreeBackendMemory") == {"result": True, "count": 24}
