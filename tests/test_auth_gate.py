"""SwarmUI's global gate: with ``Network.RequiredAuthorization`` set, every request needs that exact
``Authorization`` header unless it comes from ``Network.AuthBypassIPs``; otherwise a plain-text
401. A valid API key passes too (accounts on)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import websockets

from swarmkeeper.accounts.gate import bypassed, plain_address
from tests.accounts_support import accounts_server, write_settings
from tests.servers import in_process, on_loopback, test_config

PASS_PHRASE = "Bearer open-sesame-42"
REMOTE = ("198.51.100.20", 5000)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Unauthorized"


@pytest.fixture
def gated(data_dir: Path) -> Path:
    write_settings(data_dir, network={"RequiredAuthorization": PASS_PHRASE})
    return data_dir


async def test_a_remote_request_needs_the_exact_header(gated: Path) -> None:
    async with in_process(test_config(gated), client=REMOTE) as client:
        assert_unauthorized(await client.http.post("/API/GetNewSession", json={}))
        for wrong in ("bearer open-sesame-42", PASS_PHRASE + " ", "Bearer open-sesame-4", "Basic b3Blbg=="):
            assert_unauthorized(await client.http.post("/API/GetNewSession", json={},
                                                       headers={"Authorization": wrong}))
        right = await client.http.post("/API/GetNewSession", json={}, headers={"Authorization": PASS_PHRASE})
        assert right.status_code == 200 and right.json()["user_id"] == "local"


async def test_every_path_is_gated_not_only_the_api(gated: Path) -> None:
    async with in_process(test_config(gated), client=REMOTE) as client:
        for path in ("/", "/Error/NoGetAPI", "/no/such/page"):
            assert_unauthorized(await client.http.get(path))
        page = await client.http.get("/Error/NoGetAPI", headers={"Authorization": PASS_PHRASE})
        assert page.status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
async def test_loopback_bypasses_by_default(gated: Path, host: str) -> None:
    async with in_process(test_config(gated), client=(host, 5000)) as client:
        assert (await client.http.post("/API/GetNewSession", json={})).status_code == 200


async def test_the_bypass_list_is_configurable(data_dir: Path) -> None:
    write_settings(data_dir, network={"RequiredAuthorization": PASS_PHRASE, "AuthBypassIPs": " 10.0.0.9 , 10.0.0.10"})
    async with in_process(test_config(data_dir), client=("10.0.0.10", 1)) as listed:
        assert (await listed.http.post("/API/GetNewSession", json={})).status_code == 200
    async with in_process(test_config(data_dir), client=("127.0.0.1", 1)) as local:
        assert_unauthorized(await local.http.post("/API/GetNewSession", json={}))


def test_address_forms() -> None:
    assert plain_address("::ffff:10.1.2.3") == "10.1.2.3" and plain_address("::1") == "::1"
    assert plain_address("not an address") == "not an address"
    assert bypassed("127.0.0.1,::1", "::ffff:127.0.0.1") and not bypassed("", "127.0.0.1")


async def test_a_valid_api_key_passes_the_gate(data_dir: Path) -> None:
    async with accounts_server(data_dir, client=REMOTE, network={"RequiredAuthorization": PASS_PHRASE}) as server:
        await server.add_user("bot-owner", "admin")
        key = await server.key_for("bot-owner")
        assert (await server.call("ListBackends", key=key)).json() == {}
        assert_unauthorized(await server.call("ListBackends", key=key[:-1] + ("A" if key[-1] != "A" else "B")))
        with_phrase = await server.call("GetNewSession", headers={"Authorization": PASS_PHRASE})
        assert with_phrase.json() == {"error": "Invalid or unauthorized."}  # past the gate, not logged in


async def test_the_log_shows_lengths_never_the_header(gated: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="swarmkeeper")
    async with in_process(test_config(gated), client=REMOTE) as client:
        await client.http.post("/API/GetNewSession", json={}, headers={"Authorization": "Bearer open-sesame-X"})
        await client.http.post("/API/GetNewSession", json={})
    assert "Unauthorized request from 198.51.100.20 (auth header length 20, expected 21)" in caplog.text
    assert "Unauthorized request from 198.51.100.20 (no auth header)" in caplog.text
    assert "open-sesame" not in caplog.text


async def test_on_the_wire_http_and_websocket(data_dir: Path) -> None:
    write_settings(data_dir, network={"RequiredAuthorization": PASS_PHRASE, "AuthBypassIPs": ""})
    async with on_loopback(test_config(data_dir)) as running, httpx.AsyncClient(base_url=running.url) as http:
        assert_unauthorized(await http.post("/API/GetNewSession", json={}))
        ok = await http.post("/API/GetNewSession", json={}, headers={"Authorization": PASS_PHRASE})
        assert ok.status_code == 200
        ws_url = running.url.replace("http://", "ws://") + "/API/ListBackends"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url):
                pass
        assert refused.value.response.status_code in (401, 403)
        async with websockets.connect(ws_url, additional_headers={"Authorization": PASS_PHRASE}) as socket:
            await socket.send('{"session_id": "nope"}')
            assert "invalid_session_id" in await socket.recv()
