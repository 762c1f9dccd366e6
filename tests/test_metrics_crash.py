"""/metrics after real crashes of a self-started backend (the fake ComfyUI as a child process):
AutoRestart's relaunch counts as a crash restart, and the gauges say what ListBackends says."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from swarmkeeper_doubles.fake_comfyui_script import write_main
from tests.comfy_backends import add_backend, comfy_server, launches
from tests.metrics_support import scrape, value
from tests.process_fakes import poll_until
from tests.servers import APIClient

SELF = "comfyui_selfstart"
PLAIN = {"FrontendVersion": "None", "EnablePreviews": "false"}


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[APIClient]:
    async with comfy_server(data_dir) as client:
        yield client


async def crash(api: APIClient, backend_id: int) -> None:
    entry = await api.wait_status(backend_id, "running", timeout=30)
    os.kill(entry["pid"], signal.SIGKILL)


async def assert_status_matches(api: APIClient, backend_id: int) -> None:
    entry = (await api.ok("ListBackends"))[str(backend_id)]
    samples = await scrape(api)
    labels = {"backend": str(backend_id), "type": SELF}
    assert value(samples, "swarmkeeper_backend_status", **labels, status=entry["status"]) == 1
    assert value(samples, "swarmkeeper_backends", type=SELF, status=entry["status"]) == 1
    assert value(samples, "swarmkeeper_backend_init_attempts", **labels) == entry["init_attempts"]


async def test_an_auto_restart_after_a_crash_counts_as_a_crash_restart(api: APIClient, tmp_path: Path) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(write_main(tmp_path / "ComfyUI")), **PLAIN)
    await crash(api, backend_id)
    await poll_until(lambda: len(launches(api, backend_id)) == 2)
    await api.wait_status(backend_id, "running", timeout=30)
    samples = await scrape(api)
    assert value(samples, "swarmkeeper_restarts_total", type=SELF, cause="crash") == 1
    assert value(samples, "swarmkeeper_restarts_total", type=SELF, cause="user") == 0
    await assert_status_matches(api, backend_id)
    assert (await api.ok("RestartBackends", backend=str(backend_id)))["count"] == 1
    await api.wait_status(backend_id, "running", timeout=30)
    samples = await scrape(api)
    assert value(samples, "swarmkeeper_restarts_total", type=SELF, cause="user") == 1
    assert value(samples, "swarmkeeper_restarts_total", type=SELF, cause="crash") == 1
    await assert_status_matches(api, backend_id)


async def test_a_crash_without_auto_restart_is_an_error_not_a_restart(api: APIClient, tmp_path: Path) -> None:
    backend_id = await add_backend(api, SELF, StartScript=str(write_main(tmp_path / "ComfyUI")),
                                   AutoRestart=False, **PLAIN)
    await crash(api, backend_id)
    await api.wait_status(backend_id, "errored", timeout=30)
    samples = await scrape(api)
    assert value(samples, "swarmkeeper_restarts_total", type=SELF, cause="crash") == 0
    assert value(samples, "swarmkeeper_status_changes_total", type=SELF, status="errored") == 1
    await assert_status_matches(api, backend_id)
