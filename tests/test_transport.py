"""The transport, on a real server over loopback: SwarmUI's checks, in SwarmUI's order, with its
exact error shapes and HTTP codes (reference §1, §14)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from swarmkeeper.api.transport import parse_body
from swarmkeeper.exceptions import TransportError
from tests.servers import APIClient, LoopbackServer, on_loopback, test_config


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LoopbackServer]:
    async with on_loopback(test_config(data_dir)) as running:
        yield running


@pytest.fixture
async def http(server: LoopbackServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False) as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient) -> APIClient:
    client = APIClient(http)
    await client.new_session()
    return client


def assert_framework_error(response: httpx.Response, error_id: str, error: str, status: int = 400) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert list(response.json().items()) == [("error_id", error_id), ("error", error)]


async def test_get_new_session_shape(http: httpx.AsyncClient, server: LoopbackServer) -> None:
    response = await http.post("/API/GetNewSession", json={})
    data = response.json()
    assert list(data) == ["session_id", "user_id", "output_append_user", "version", "server_id", "permissions"]
    assert data["user_id"] == "local"
    assert data["permissions"] == ["*", *sorted(p for p in data["permissions"] if p != "*")]
    assert data["server_id"] == server.services.server_id
    again = (await http.post("/API/GetNewSession", json={})).json()
    assert again["server_id"] == data["server_id"]
    assert again["session_id"] != data["session_id"]


async def test_responses_are_compact_and_uncached(http: httpx.AsyncClient) -> None:
    response = await http.post("/API/GetNewSession", json={})
    assert response.headers["cache-control"] == "no-store"
    assert b": " not in response.content and b", " not in response.content
    assert int(response.headers["content-length"]) == len(response.content)


async def test_route_names_are_case_insensitive(api: APIClient) -> None:
    for name in ("ListBackends", "listbackends", "LISTBACKENDS"):
        response = await api.http.post(f"/API/{name}", json={"session_id": api.session_id})
        assert response.status_code == 200
        assert response.json() == {}
    response = await api.http.post("/api/ListBackends", json={"session_id": api.session_id})
    assert response.json() == {}


async def test_get_redirects_to_no_get_api_page(http: httpx.AsyncClient) -> None:
    response = await http.get("/API/ListBackends")
    assert response.status_code == 302
    assert response.headers["location"] == "/Error/NoGetAPI"
    page = await http.get("/Error/NoGetAPI")
    assert page.status_code == 200 and "POST" in page.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type(http: httpx.AsyncClient, content_type: str) -> None:
    response = await http.post("/API/GetNewSession", content=b"{}", headers={"content-type": content_type})
    assert_framework_error(response, "basic_api", "Wrong content type")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.api+json"])
async def test_json_content_types_accepted(http: httpx.AsyncClient, content_type: str) -> None:
    response = await http.post("/API/GetNewSession", content=b"{}", headers={"content-type": content_type})
    assert response.status_code == 200 and "session_id" in response.json()


async def test_empty_body_is_a_bad_content_length(http: httpx.AsyncClient) -> None:
    response = await http.post("/API/GetNewSession", content=b"", headers={"content-type": "application/json"})
    assert_framework_error(response, "basic_api", "bad content length")


async def test_chunked_body_without_length_is_refused(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"{}"

    response = await http.post("/API/GetNewSession", content=chunks(), headers={"content-type": "application/json"})
    assert_framework_error(response, "basic_api", "bad content length")


async def test_null_body(http: httpx.AsyncClient) -> None:
    response = await http.post("/API/GetNewSession", content=b"null", headers={"content-type": "application/json"})
    assert_framework_error(response, "basic_api", "null input")


@pytest.mark.parametrize(("body", "hint"), [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b'"text"', "must be a JSON object"),
    (b'{"a": NaN}', "not valid JSON"), (b"[" * 100000, "not valid JSON"), (b"\xff\xfe\x00", "not valid JSON"),
])
async def test_bodies_that_are_not_objects(http: httpx.AsyncClient, body: bytes, hint: str) -> None:
    response = await http.post("/API/GetNewSession", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    data = response.json()
    assert data["error_id"] == "internal_error"
    assert hint in data["error"]
    assert "Traceback" not in response.text


async def test_missing_session_id(http: httpx.AsyncClient) -> None:
    response = await http.post("/API/ListBackends", json={})
    assert_framework_error(response, "basic_api", "missing session id")


async def test_unknown_session_is_401(http: httpx.AsyncClient) -> None:
    response = await http.post("/API/ListBackends", json={"session_id": "nope"})
    assert response.status_code == 401
    assert response.json() == {"error_id": "invalid_session_id",
                               "error": "Invalid session ID. You may need to refresh the page."}


async def test_session_is_checked_before_the_route(http: httpx.AsyncClient, api: APIClient) -> None:
    bad_session = await http.post("/API/NoSuchRoute", json={"session_id": "nope"})
    assert bad_session.status_code == 401
    no_session = await http.post("/API/NoSuchRoute", json={})
    assert_framework_error(no_session, "basic_api", "missing session id")
    good = await api.call("NoSuchRoute")
    assert_framework_error(good, "bad_route", "Unknown API route")
    extra_segment = await api.call("ListBackends/extra")
    assert_framework_error(extra_segment, "bad_route", "Unknown API route")


async def test_session_from_header_and_body_wins(http: httpx.AsyncClient, api: APIClient) -> None:
    by_header = await http.post("/API/ListBackends", json={}, headers={"X-Session-ID": api.session_id or ""})
    assert by_header.status_code == 200
    body_wins = await http.post("/API/ListBackends", json={"session_id": "bad"},
                                headers={"X-Session-ID": api.session_id or ""})
    assert body_wins.status_code == 401


async def test_missing_and_invalid_parameters(api: APIClient) -> None:
    assert await api.error("DeleteBackend") == "Missing required parameter 'backend_id'"
    assert await api.error("DeleteBackend", backend_id="abc") == (
        "Invalid value 'abc' for parameter 'backend_id', must be type 'Int32'")
    assert await api.error("DeleteBackend", backend_id=5.5) == (
        "Invalid value '5.5' for parameter 'backend_id', must be type 'Int32'")
    assert await api.error("DeleteBackend", backend_id=True) == (
        "Invalid value 'True' for parameter 'backend_id', must be type 'Int32'")
    assert await api.error("DeleteBackend", backend_id=None) == (
        "Invalid value '' for parameter 'backend_id', must be type 'Int32'")
    assert await api.error("ToggleBackend", backend_id=0, enabled=1) == (
        "Invalid value '1' for parameter 'enabled', must be type 'Boolean'")


async def test_parameters_coerce_as_dotnet_does(api: APIClient) -> None:
    for value in ("5", " 5", "+5", 5, 5.0):
        assert (await api.ok("DeleteBackend", backend_id=value)) == {"result": "Already didn't exist."}
    assert await api.ok("ListBackends", nonreal="TRUE", full_data=" false ") == {}


async def test_first_bad_parameter_in_declaration_order_wins(api: APIClient) -> None:
    assert await api.error("ToggleBackend", enabled="maybe", backend_id="x") == (
        "Invalid value 'x' for parameter 'backend_id', must be type 'Int32'")


async def test_huge_parameter_value_is_clipped_in_the_error(api: APIClient) -> None:
    error = await api.error("DeleteBackend", backend_id="9" * 100_000)
    assert error.startswith("Invalid value '999") and len(error) < 400


async def test_websocket_to_an_http_route(server: LoopbackServer, api: APIClient) -> None:
    import json

    import websockets

    async with websockets.connect(server.url.replace("http", "ws") + "/API/ListBackends") as socket:
        await socket.send(json.dumps({"session_id": api.session_id}))
        message = json.loads(await socket.recv())
    assert message == {"error_id": "bad_request_method", "error": "API route needs HTTP, request is websocket"}


async def test_websocket_to_an_unknown_route(server: LoopbackServer, api: APIClient) -> None:
    import json

    import websockets

    async with websockets.connect(server.url.replace("http", "ws") + "/API/ListBackendsWS") as socket:
        await socket.send(json.dumps({"session_id": api.session_id}))
        message = json.loads(await socket.recv())
    assert list(message.items()) == [("error", "Unknown API route."), ("error_id", "bad_route")]


async def test_sessions_survive_a_restart(data_dir: Path) -> None:
    from tests.servers import in_process

    async with in_process(test_config(data_dir)) as first:
        session_id = await first.new_session()
    async with in_process(test_config(data_dir)) as second:
        second.session_id = session_id
        assert await second.ok("ListBackends") == {}
        assert (await second.raw("ListBackends", {"session_id": "forged"})).status_code == 401


@pytest.mark.parametrize(("data", "expected"), [
    (b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),  # past 64 bits
    ('{"t": "é"}'.encode("utf-16"), {"t": "é"}),
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a UTF-8 byte order mark
    (b'{"s": "\\ud800"}', {"s": "\ud800"}),  # a lone surrogate escape
    (b'{"a": 1, "a": 2}', {"a": 2}),
    (b' {"x": [1.5, true, null]} ', {"x": [1.5, True, None]}),
])
def test_bodies_read_as_the_standard_library_reads_them(data: bytes, expected: dict) -> None:
    assert parse_body(data) == expected


@pytest.mark.parametrize("data", [b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": NaN}'])
def test_non_standard_numbers_refused(data: bytes) -> None:
    with pytest.raises(TransportError, match="not valid JSON"):
        parse_body(data)
