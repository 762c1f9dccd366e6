"""Issue 13, point 4: a change is all or nothing. Each test breaks the disk under a real server (a
full tmpfs, a read-only one), tries every route that changes Backends.fds, and checks that the
answer says so in SwarmUI's shape, that ListBackends and the file are exactly as before, that
no process is left behind, and that a later save does not write the refused change."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper import fds
from tests.disk_support import SmallDisk, process_alive, small_disk
from tests.servers import DUMMY_TYPES, APIClient, ServerProcess, in_process, on_loopback, test_config

Starter = Callable[..., Awaitable[APIClient]]
FULL = "Could not save the backends file: No space left on device. Nothing was changed."
READ_ONLY = "Could not save the backends file: Read-only file system. Nothing was changed."


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


@pytest.fixture
def backends_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "backends-disk", "1m") as mounted:
        yield mounted


@pytest.fixture
async def api_on() -> AsyncIterator[Callable[..., Awaitable[APIClient]]]:
    """Start a server on loopback with the given config (a factory the test calls after mounting
    its disk); stopped before the disk is unmounted."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**config: Any) -> APIClient:
            running = await stack.enter_async_context(on_loopback(test_config(**config)))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=running.url, timeout=30))
            return APIClient(http, running.services)

        yield start


async def two_backends(api: APIClient) -> None:
    """Backend 0 running with a title and settings, backend 1 disabled by the user."""
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=0, title="GPU 0", settings={"Address": "a", "Token": "t0", "OverQueue": 2})
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=1, title="GPU 1", settings={"Address": "b"})
    await api.wait_status(1, "running")
    await api.ok("ToggleBackend", backend_id=1, enabled=False)
    await api.wait_status(0, "running")


async def every_change_refused(api: APIClient, path: Path, message: str) -> None:
    before_listing = await api.ok("ListBackends", nonreal=True)
    before_file = path.read_bytes()
    attempts: list[dict[str, Any]] = [
        {"route": "AddNewBackend", "type_id": "swarmkeeper_dummy"},
        {"route": "EditBackend", "backend_id": 0, "title": "Renamed", "settings": {"OverQueue": 5, "Token": "x"}},
        {"route": "EditBackend", "backend_id": 0, "title": "Moved", "settings": {}, "new_id": 7},
        {"route": "ToggleBackend", "backend_id": 0, "enabled": False},
        {"route": "ToggleBackend", "backend_id": 1, "enabled": True},
        {"route": "DeleteBackend", "backend_id": 0},
        {"route": "DeleteBackend", "backend_id": 1},
    ]
    for attempt in attempts:
        params = {key: value for key, value in attempt.items() if key != "route"}
        assert await api.error(attempt["route"], **params) == message, attempt
        assert await api.ok("ListBackends", nonreal=True) == before_listing, attempt
        assert path.read_bytes() == before_file, attempt
    assert sorted(entry.name for entry in path.parent.iterdir() if entry.name.startswith("Backends")) == [
        "Backends.fds"]  # no half-written ~1 left behind


def saved_entries(path: Path) -> dict[str, dict[str, Any]]:
    root = fds.loads(path.read_text())
    return {key: {"title": root[key]["title"], "enabled": root[key]["enabled"],
                  "settings": dict(root[key]["settings"])} for key in root}


async def test_a_full_disk_refuses_every_change_and_keeps_the_registry(disk: SmallDisk, api_on: Starter) -> None:
    data_dir = disk.mount / "Data"
    api = await api_on(data_dir=data_dir)
    await two_backends(api)
    path = data_dir / "Backends.fds"
    saved = saved_entries(path)
    disk.fill()
    await every_change_refused(api, path, FULL)
    assert (await api.ok("ListBackends"))["0"]["status"] == "running"

    disk.free()  # a later, unrelated save writes the registry as it is, without the refused changes
    added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    assert added["id"] == 2  # the refused add took no id
    after = saved_entries(path)
    assert list(after) == ["0", "1", "2"]
    assert {key: after[key] for key in ("0", "1")} == saved
    listing = await api.ok("ListBackends")
    assert (listing["0"]["title"], listing["0"]["settings"]["OverQueue"], listing["0"]["enabled"]) == ("GPU 0", 2, True)
    assert (listing["1"]["enabled"], listing["1"]["status"]) == (False, "disabled")


async def test_a_read_only_backends_folder_refuses_every_change(tmp_path: Path, backends_disk: SmallDisk,
                                                               api_on: Starter) -> None:
    path = backends_disk.mount / "Backends.fds"
    api = await api_on(data_dir=tmp_path / "Data", backends_file=path)
    await two_backends(api)
    backends_disk.read_only()
    try:
        await every_change_refused(api, path, READ_ONLY)
    finally:
        backends_disk.read_only(False)
    await api.ok("EditBackend", backend_id=0, title="Writable again", settings={})
    assert saved_entries(path)["0"]["title"] == "Writable again"
    assert saved_entries(path)["1"]["enabled"] is False


async def test_many_changes_at_once_on_a_full_disk_all_fail_and_none_is_written(disk: SmallDisk,
                                                                               api_on: Starter) -> None:
    """Group-committed saves: every caller that shared a failed write hears of it."""
    data_dir = disk.mount / "Data"
    api = await api_on(data_dir=data_dir)
    await two_backends(api)
    before = await api.ok("ListBackends")
    disk.fill()
    answers = await asyncio.gather(*(api.call("AddNewBackend", type_id="swarmkeeper_dummy") for _ in range(8)),
                                   api.call("EditBackend", backend_id=0, title="x", settings={}),
                                   api.call("ToggleBackend", backend_id=1, enabled=True))
    assert [answer.json() for answer in answers] == [{"error": FULL}] * 10
    assert await api.ok("ListBackends") == before
    disk.free()
    await api.ok("ToggleBackend", backend_id=0, enabled=False)
    assert list(saved_entries(data_dir / "Backends.fds")) == ["0", "1"]


async def wait_for(condition: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_no_process_is_left_behind(disk: SmallDisk) -> None:
    """A self-started backend's process: a delete or edit refused on a full disk leaves it running
    and tracked; a delete that saves stops it; a graceful stop of the server stops the rest."""
    server = ServerProcess(disk.mount / "Data", "--backend_types", "tests.web.process_backend")
    server.log_path = disk.mount.parent / "server.log"
    server.start()
    try:
        async with server.client() as http:
            api = APIClient(http)
            for _ in range(2):
                await api.ok("AddNewBackend", type_id="test_process")
            first = (await api.wait_status(0, "running"))["pid"]
            second = (await api.wait_status(1, "running"))["pid"]
            assert process_alive(first) and process_alive(second)
            disk.fill()
            assert await api.error("DeleteBackend", backend_id=0) == FULL
            assert await api.error("EditBackend", backend_id=0, title="t", settings={"Seconds": 60}) == FULL
            assert await api.error("ToggleBackend", backend_id=0, enabled=False) == FULL
            listing = await api.ok("ListBackends")
            assert (listing["0"]["status"], listing["0"]["pid"]) == ("running", first)
            assert process_alive(first)
            disk.free()
            assert (await api.ok("DeleteBackend", backend_id=0))["result"] == "Deleted."
            await wait_for(lambda: not process_alive(first), "the deleted backend's process to end")
            assert list(await api.ok("ListBackends")) == ["1"]
        server.stop()  # SIGTERM: uvicorn shuts down gracefully, then re-raises it
        await wait_for(lambda: not process_alive(second), "the graceful stop to end the backend's process")
    finally:
        server.stop()


async def test_a_delete_cut_off_at_exit_still_stops_the_process(data_dir: Path) -> None:
    """A delete waiting for a busy backend's work when the server stops (uvicorn cancels requests
    still running after its grace period): the program shutdown stops the process it left."""
    config = test_config(data_dir, backend_type_modules=(*DUMMY_TYPES, "tests.web.process_backend"))
    async with in_process(config) as api:
        assert api.services is not None
        manager = api.services.manager
        await api.ok("AddNewBackend", type_id="test_process")
        pid = (await api.wait_status(0, "running"))["pid"]
        record = manager.get(0)
        while not record.saturated:
            manager.registry.claim(record)  # every slot busy: a clean shutdown waits for them
        delete = asyncio.create_task(manager.delete(0))
        await wait_for(lambda: record.removed, "the delete to remove the backend")
        delete.cancel()
        with pytest.raises(asyncio.CancelledError):
            await delete
        assert process_alive(pid)
    assert not process_alive(pid)
