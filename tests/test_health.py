"""/health/live and /health/ready."""

from __future__ import annotations

from pathlib import Path

from swarmkeeper.health import readiness
from tests.servers import APIClient, in_process, test_config


async def test_live_answers_while_the_process_does(app_client: APIClient) -> None:
    response = await app_client.http.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "live"})
    assert response.headers["cache-control"] == "no-store"
    assert (await app_client.http.head("/health/live")).status_code == 200


async def test_ready_needs_a_running_backend(app_client: APIClient) -> None:
    response = await app_client.http.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "reason": "No backend is running.", "backends": 0,
                               "running": 0}
    added = await app_client.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await app_client.ok("EditBackend", backend_id=added["id"], title="", settings={"Address": "x"})
    await app_client.wait_status(added["id"], "running")
    response = await app_client.http.get("/health/ready")
    assert (response.status_code, response.json()) == (
        200, {"status": "ready", "reason": "", "backends": 1, "running": 1})
    await app_client.ok("ToggleBackend", backend_id=added["id"], enabled=False)
    assert (await app_client.http.get("/health/ready")).status_code == 503


async def test_ready_without_backends_when_configured(data_dir: Path) -> None:
    async with in_process(test_config(data_dir, ready_requires_backend=False)) as client:
        response = await client.http.get("/health/ready")
        assert (response.status_code, response.json()["status"]) == (200, "ready")


async def test_not_ready_while_starting_or_stopping(app_client: APIClient) -> None:
    assert readiness(None).ready is False and "starting" in readiness(None).reason
    services = app_client.services
    services.manager.lifecycle.stopping.set()
    try:
        verdict = readiness(services)
        assert (verdict.ready, verdict.reason) == (False, "The server is stopping.")
    finally:
        services.manager.lifecycle.stopping.clear()
