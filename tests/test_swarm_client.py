"""SwarmClient (swarmkeeper/clients/swarm.py) against the SwarmUI double and raw sockets: request
shapes, sessions and the re-session on invalid_session_id, headers on every request, and every
kind of bad answer turned into a readable SwarmError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from swarmkeeper.clients.swarm import (
    SwarmAPIError,
    SwarmAuthRefused,
    SwarmClient,
    SwarmProtocolError,
    SwarmTimeout,
    SwarmUnreachable,
    normalize_address,
    parse_header_lines,
)
from swarmkeeper_doubles.swarm_double import SwarmDouble, run_swarm_double
from tests.ports import free_port


@pytest.fixture
async def double() -> AsyncIterator[SwarmDouble]:
    async with run_swarm_double() as running:
        running.add_backend(0, "comfyui_selfstart", features=["comfyui"])
        yield running


async def test_session_then_call_with_swarmui_shapes(double: SwarmDouble) -> None:
    async with SwarmClient(double.url) as client:
        listing = await client.call("ListBackends", nonreal=True, full_data=True)
        assert client.server_id == double.server_id
    assert list(listing) == ["0"] and listing["0"]["current_model"] is None
    assert double.calls[0] == ("GetNewSession", {})
    assert double.calls[1] == ("ListBackends", {"session_id": client.session_id, "nonreal": True, "full_data": True})


async def test_forgotten_session_is_remade_once(double: SwarmDouble) -> None:
    async with SwarmClient(double.url) as client:
        await client.call("ListBackends")
        first = client.session_id
        double.forget_sessions()
        await client.call("ListBackends")
    assert client.session_id != first
    assert [name for name, _ in double.calls] == ["GetNewSession", "ListBackends", "ListBackends", "GetNewSession",
                                                  "ListBackends"]


async def test_route_error_is_an_api_error(double: SwarmDouble) -> None:
    async with SwarmClient(double.url) as client:
        with pytest.raises(SwarmAPIError) as caught:
            await client.call("ListModels", path="", depth=1, subtype="Nope")
    assert caught.value.message == "Invalid sub-type." and caught.value.error_id is None


async def test_headers_go_with_every_request(double: SwarmDouble) -> None:
    seen: list[httpx.Headers] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"session_id": "s", "server_id": "x"})

    headers = {"Authorization": "Bearer abc", "X-Team": "render"}
    async with SwarmClient("http://remote:7801", headers=headers, transport=httpx.MockTransport(record)) as client:
        await client.call("ListBackends")
        await client.call("ListModels", path="", depth=1)
    assert len(seen) == 3
    assert all(h["authorization"] == "Bearer abc" and h["x-team"] == "render" for h in seen)


@pytest.mark.parametrize(("fault", "kind", "words"), [
    ("html", SwarmProtocolError, "an HTML page (HTTP 200)"),
    ("garbage", SwarmProtocolError, "something that is not JSON (HTTP 200)"),
    ("error500", SwarmProtocolError, "(HTTP 500)"),
    ("huge", SwarmProtocolError, "too large"),
])
async def test_answers_that_are_not_swarmui(double: SwarmDouble, fault: str, kind: type, words: str) -> None:
    double.fault = fault
    async with SwarmClient(double.url, max_body=4 * 1024 * 1024) as client:
        with pytest.raises(kind) as caught:
            await client.new_session()
    assert words in caught.value.message and double.url in caught.value.message


async def test_a_remote_that_never_answers_times_out(double: SwarmDouble) -> None:
    double.fault = "hang"
    async with SwarmClient(double.url, timeout=0.5) as client:
        with pytest.raises(SwarmTimeout) as caught:
            await client.call("ListBackends")
    assert caught.value.message == f"{double.url} did not answer within 0.5 s"


async def test_silent_socket_times_out() -> None:
    """A server that accepts the connection and never sends a byte."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SwarmClient(f"http://127.0.0.1:{port}", timeout=0.3) as client:
            with pytest.raises(SwarmTimeout):
                await client.new_session()
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_refused_connection_says_so() -> None:
    async with SwarmClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(SwarmUnreachable) as caught:
            await client.new_session()
    assert caught.value.message == "Connection refused - is the backend running, or is the address correct?"


async def test_global_gate_401(double: SwarmDouble) -> None:
    double.fault = "unauthorized"
    async with SwarmClient(double.url, headers={"Authorization": "Bearer wrong-secret"}) as client:
        with pytest.raises(SwarmAuthRefused) as with_header:
            await client.new_session()
    async with SwarmClient(double.url) as client:
        with pytest.raises(SwarmAuthRefused) as without:
            await client.new_session()
    assert "refused our Authorization header" in with_header.value.message
    assert "wrong-secret" not in with_header.value.message
    assert "requires an Authorization header" in without.value.message


async def test_missing_session_id_in_answer() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"version": "1"}))
    async with SwarmClient("http://remote", transport=transport) as client:
        with pytest.raises(SwarmProtocolError, match=r"^Failed to get session ID from remote swarm\.$"):
            await client.new_session()


def test_other_headers_lines() -> None:
    headers, bad = parse_header_lines("X-One: 1\n\nbroken line\nX-Url: http://a:b\r\nBad Name: x\nX-Two:2\n")
    assert headers == {"X-One": "1", "X-Url": "http://a:b", "X-Two": "2"}
    assert bad == [3, 5]
    assert parse_header_lines("X-Evil: a\x00b")[1] == [1]


@pytest.mark.parametrize("address", ["", "localhost:7801", "ftp://host", "http://", "http://host/?q=1"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="is not an http:// or https:// address"):
        normalize_address(address)


def test_address_loses_its_trailing_slash() -> None:
    assert normalize_address(" http://gpu-box:7801/ ") == "http://gpu-box:7801"
