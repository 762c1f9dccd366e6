"""The plain HTTP endpoints with accounts on (issue 13, point 11): /metrics, /openapi.json and the
detail of /health/ready need a credential; /health/live stays open; with accounts off everything
is open as before. Each test calls as an anonymous stranger first (the attack), then as users."""

from __future__ import annotations

from pathlib import Path

import httpx

from swarmkeeper.accounts.tokens import COOKIE
from tests.accounts_support import Accounted, accounts_server
from tests.servers import in_process, test_config

LOGIN_REQUIRED = {"error_id": "login_required",
                  "error": "This needs a credential: log in (the swarm_token cookie) or send an API key "
                           "('Authorization: Bearer swk_...')."}
DETAIL = {"status", "reason", "backends", "running"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def get(server: Accounted, path: str, **headers: str) -> httpx.Response:
    response = await server.http.get(path, headers=headers)
    server.http.cookies.clear()
    return response


async def test_anonymous_callers_get_no_metrics_no_openapi_and_no_readiness_detail(
        app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    for path in ("/metrics", "/openapi.json"):
        response = await get(server, path)
        assert (response.status_code, response.json()) == (401, LOGIN_REQUIRED), path
        assert "swarmkeeper_" not in response.text and "openapi" not in response.text
    ready = await get(server, "/health/ready")
    assert (ready.status_code, ready.json()) == (503, {"status": "not_ready"})
    live = await get(server, "/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "live"})
    forged = await get(server, "/metrics", Authorization="Bearer swk_0123456789ab_" + "x" * 43)
    assert (forged.status_code, forged.json()["error_id"]) == (401, "invalid_api_key")


async def test_metrics_need_view_logs_openapi_any_login(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "admin")
    await server.add_user("bob", "user")
    admin_key, user_key = await server.key_for("root"), await server.key_for("bob")
    scraped = await get(server, "/metrics", **bearer(admin_key))
    assert scraped.status_code == 200 and "swarmkeeper_build_info" in scraped.text
    refused = await get(server, "/metrics", **bearer(user_key))
    assert (refused.status_code, refused.json()) == (
        403, {"error_id": "bad_permissions", "error": "You lack the permission this needs (view_logs)."})
    narrowed = await get(server, "/metrics", **bearer(await server.key_for("root", role="user")))
    assert narrowed.status_code == 403  # a key narrowed to a role holds only what the role does
    cookie = f"{COOKIE}={await server.token_for('bob')}"
    document = await get(server, "/openapi.json", Cookie=cookie)
    assert document.status_code == 200 and "/API/ListBackends" in document.json()["paths"]
    assert (await get(server, "/openapi.json", **bearer(user_key))).status_code == 200


async def test_readiness_detail_for_those_who_may_list_backends(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("pat", "poweruser")
    await server.add_user("bob", "user")
    detailed = await get(server, "/health/ready", **bearer(await server.key_for("pat")))
    assert detailed.status_code == 503
    assert detailed.json() == {"status": "not_ready", "reason": "No backend is running.", "backends": 0,
                               "running": 0}
    plain = await get(server, "/health/ready", **bearer(await server.key_for("bob")))
    assert (plain.status_code, plain.json()) == (503, {"status": "not_ready"})


async def test_public_metrics_opens_metrics_only(data_dir: Path) -> None:
    async with accounts_server(data_dir, public_metrics=True) as server:
        scraped = await get(server, "/metrics")
        assert scraped.status_code == 200 and "swarmkeeper_build_info" in scraped.text
        assert (await get(server, "/openapi.json")).status_code == 401
        assert set((await get(server, "/health/ready")).json()) == {"status"}


async def test_with_accounts_off_everything_stays_open(data_dir: Path) -> None:
    async with in_process(test_config(data_dir), client=("203.0.113.7", 40000)) as client:
        assert (await client.http.get("/metrics")).status_code == 200
        assert (await client.http.get("/openapi.json")).status_code == 200
        assert set((await client.http.get("/health/ready")).json()) == DETAIL
