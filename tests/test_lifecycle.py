"""Init scheduling, retries and shutdowns (reference §4.3 to §4.5), with the dummy backend types."""

from __future__ import annotations

import asyncio
from pathlib import Path

from swarmkeeper.config import ServerSettings
from tests.servers import APIClient, ServerProcess, in_process, test_config


def write_settings(data_dir: Path, **backends: object) -> None:
    import dataclasses

    from swarmkeeper import fds
    from swarmkeeper.files import write_atomic

    settings = ServerSettings(backends=dataclasses.replace(ServerSettings().backends, **backends))
    write_atomic(data_dir / "Settings.fds", fds.dumps(settings.to_fds()))


async def add(api: APIClient, type_id: str = "swarmkeeper_dummy", **settings: object) -> int:
    backend_id = int((await api.ok("AddNewBackend", type_id=type_id))["id"])
    if settings:
        await api.ok("EditBackend", backend_id=backend_id, title="", settings=settings)
    return backend_id


async def test_failed_init_retries_then_errors_with_the_reason(data_dir: Path) -> None:
    write_settings(data_dir, MaxBackendInitAttempts=1)
    async with in_process(test_config(data_dir)) as api:
        backend_id = await add(api, Address="gpu0", Mode="fail")
        waiting = await api.wait_status(backend_id, "waiting", "errored")
        entry = await api.wait_status(backend_id, "errored")
    assert entry["init_attempts"] == 2
    assert entry["status_reason"] == "Dummy backend at gpu0 failed to start (gave up after 2 attempts)"
    assert waiting["status"] == "errored" or "will retry" in waiting["status_reason"] or waiting["init_attempts"] < 2


async def test_config_error_is_not_retried(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        backend_id = await add(api, Address="x", Mode="config")
        entry = await api.wait_status(backend_id, "errored")
    assert entry["init_attempts"] == 1 and entry["status_reason"] == "Dummy backend settings can never work"


async def test_attempt_counter_resets_on_edit_toggle_and_restart(data_dir: Path) -> None:
    write_settings(data_dir, MaxBackendInitAttempts=0)
    async with in_process(test_config(data_dir)) as api:
        backend_id = await add(api, Address="x", Mode="fail")
        assert (await api.wait_status(backend_id, "errored"))["init_attempts"] == 1
        await api.ok("RestartBackends", backend=str(backend_id))
        assert (await api.wait_status(backend_id, "errored"))["init_attempts"] == 1
        await api.ok("ToggleBackend", backend_id=backend_id, enabled=False)
        await api.ok("ToggleBackend", backend_id=backend_id, enabled=True)
        assert (await api.wait_status(backend_id, "errored"))["init_attempts"] == 1
        await api.ok("EditBackend", backend_id=backend_id, title="", settings={"Mode": "ok"})
        entry = await api.wait_status(backend_id, "running")
        assert entry["init_attempts"] == 1 and entry["status_reason"] == ""


async def test_sequential_types_initialise_one_at_a_time(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        first = await add(api, "swarmkeeper_dummy_sequential", Address="a", InitSeconds="0.6")
        second = await add(api, "swarmkeeper_dummy_sequential", Address="b", InitSeconds="0.6")
        await api.wait_status(first, "loading")
        listing = await api.ok("ListBackends")
        assert listing[str(second)]["status"] == "waiting"
        await api.wait_status(first, "running")
        await api.wait_status(second, "running")


async def test_fast_types_initialise_together(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        ids = [await add(api, Address=f"x{n}", InitSeconds="0.6") for n in range(3)]
        await api.wait_status(ids[-1], "loading")
        listing = await api.ok("ListBackends")
        assert {listing[str(i)]["status"] for i in ids} == {"loading"}


async def test_all_backends_load_fast_setting(data_dir: Path) -> None:
    write_settings(data_dir, AllBackendsLoadFast=True)
    async with in_process(test_config(data_dir)) as api:
        ids = [await add(api, "swarmkeeper_dummy_sequential", Address=f"x{n}", InitSeconds="0.6") for n in range(2)]
        await api.wait_status(ids[-1], "loading")
        assert (await api.ok("ListBackends"))[str(ids[0])]["status"] == "loading"


async def test_edit_and_delete_do_not_wait_for_a_hung_init(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        backend_id = await add(api, Address="x", Mode="hang")
        await api.wait_status(backend_id, "loading")
        # the init never ends by itself, so finishing at all shows it was cancelled, not awaited
        await api.ok("EditBackend", backend_id=backend_id, title="", settings={"Mode": "ok"})
        await api.wait_status(backend_id, "running")
        hung = await add(api, Address="y", Mode="hang")
        await api.wait_status(hung, "loading")
        assert await api.ok("DeleteBackend", backend_id=hung) == {"result": "Deleted."}


async def test_disabled_backends_load_as_disabled(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        backend_id = await add(api, Address="x")
        await api.wait_status(backend_id, "running")
        await api.ok("ToggleBackend", backend_id=backend_id, enabled=False)
    async with in_process(test_config(data_dir)) as api:
        entry = await api.wait_status(backend_id, "disabled")
        assert entry["enabled"] is False and entry["status_reason"] == "Disabled by the user."


async def test_program_shutdown_stops_every_backend(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        ids = [await add(api, Address=f"x{n}") for n in range(3)]
        for backend_id in ids:
            await api.wait_status(backend_id, "running")
        assert api.services is not None
        records = [api.services.registry.get(i) for i in ids]
    assert all(record is not None and record.backend.shutdowns >= 2 for record in records)
    assert {record.status for record in records if record} == {"disabled"}


async def test_program_shutdown_waits_briefly_for_a_saturated_backend(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        backend_id = await add(api, Address="x", OverQueue="0")
        await api.wait_status(backend_id, "running")
        assert api.services is not None
        registry = api.services.registry
        record = registry.get(backend_id)
        assert record is not None
        registry.claim(record)
        status_at_release: list[str] = []

        def finish_the_job() -> None:
            status_at_release.append(str(record.status))
            registry.release(record)

        asyncio.get_running_loop().call_later(0.3, finish_the_job)
    assert status_at_release == ["running"]  # the shutdown waited for the job before stopping it
    assert record.usages == 0 and record.status == "disabled"


def test_sigterm_shuts_down_cleanly(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    import httpx

    session = httpx.post(f"{server.url}/API/GetNewSession", json={}).json()["session_id"]
    httpx.post(f"{server.url}/API/AddNewBackend", json={"session_id": session, "type_id": "swarmkeeper_dummy"})
    # uvicorn re-raises the signal once its graceful shutdown is done, as service managers expect
    assert server.stop() in (0, -15)
    output = server.output()
    assert "Shutting down: stopping every backend" in output and "Shutdown complete" in output
    assert "Traceback" not in output
