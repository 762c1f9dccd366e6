"""The push stream /events/backends on a real socket: who may open it, what it sends, and that
it always ends (and unsubscribes) when the client leaves, the session ends or the server exits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from swarmkeeper.events import BackendEvent, EventKind
from swarmkeeper.web.feature import web_feature
from swarmkeeper.web.stream import StreamPolicy
from tests.servers import APIClient, LoopbackServer, on_loopback, test_config
from tests.web.support import WEB_TYPES, RoleUsers, SSEMessage, sse_messages

QUICK = StreamPolicy(heartbeat=0.05, retry_ms=250, check_every=0.02, recheck_every=0.05)


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LoopbackServer]:
    async with on_loopback(test_config(data_dir, backend_type_modules=WEB_TYPES),
                           features=[web_feature(QUICK)]) as running:
        yield running


@pytest.fixture
async def api(server: LoopbackServer) -> AsyncIterator[APIClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield APIClient(http, server.services)


class Stream:
    """An open stream and its parsed messages."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.messages = sse_messages(response.aiter_lines())

    async def next(self, *, skip_pings: bool = True) -> SSEMessage:
        async for message in self.messages:
            if not (skip_pings and message.comment == "ping"):
                return message
        raise AssertionError("the stream ended")

    async def next_event(self, event: str) -> SSEMessage:
        while True:
            message = await self.next()
            if message.event == event:
                return message

    async def ended(self) -> bool:
        """Read to the end; True once the server has closed the stream."""
        async for _ in self.messages:
            pass
        return True


@contextlib.asynccontextmanager
async def open_stream(server: LoopbackServer, session_id: str) -> AsyncIterator[Stream]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http, \
            http.stream("GET", "/events/backends", params={"session_id": session_id}) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        yield Stream(response)


async def get_stream(server: LoopbackServer, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return await http.get("/events/backends", params=params)


async def test_a_stream_needs_a_session_id(server: LoopbackServer) -> None:
    response = await get_stream(server)
    assert response.status_code == 400
    assert response.json() == {"error_id": "basic_api", "error": "missing session id"}


async def test_an_unknown_session_is_refused_as_the_api_refuses_it(server: LoopbackServer) -> None:
    response = await get_stream(server, session_id="not-a-session")
    assert response.status_code == 401
    assert response.json()["error_id"] == "invalid_session_id"


async def test_a_user_who_may_not_view_backends_is_refused(server: LoopbackServer, api: APIClient) -> None:
    server.services.users = RoleUsers("user")
    session_id = await api.new_session()
    response = await get_stream(server, session_id=session_id)
    assert response.status_code == 400
    assert response.json() == {"error_id": "bad_permissions", "error": "You lack permissions for this route."}


async def test_the_stream_opens_with_a_retry_delay_and_ready(server: LoopbackServer, api: APIClient) -> None:
    async with open_stream(server, await api.new_session()) as stream:
        first = await stream.next()
        assert (first.event, first.data, first.retry) == ("ready", {}, QUICK.retry_ms)


async def test_changes_made_through_the_api_are_pushed(server: LoopbackServer, api: APIClient) -> None:
    async with open_stream(server, await api.new_session()) as stream:
        await stream.next_event("ready")
        added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        message = await stream.next_event("backend")
        assert message.data == {"kind": "added", "backend_id": added["id"], "status": "waiting",
                                "reason": "Waiting to load..."}
        await api.ok("EditBackend", backend_id=added["id"], title="t", settings={"Address": "x", "Mode": "config"})
        statuses = []
        while not statuses or statuses[-1]["status"] != "errored":
            statuses.append((await stream.next_event("backend")).data)
        assert statuses[-1] == {"kind": "status", "backend_id": added["id"], "status": "errored",
                                "reason": "Dummy backend settings can never work"}
        assert any(data["kind"] == "edited" for data in statuses)


async def test_heartbeats_keep_an_idle_stream_alive(server: LoopbackServer, api: APIClient) -> None:
    async with open_stream(server, await api.new_session()) as stream:
        await stream.next_event("ready")
        assert (await stream.next(skip_pings=False)).comment == "ping"
        assert (await stream.next(skip_pings=False)).comment == "ping"


async def test_a_stream_that_falls_behind_is_told_to_resync(server: LoopbackServer, api: APIClient) -> None:
    async with open_stream(server, await api.new_session()) as stream:
        await stream.next_event("ready")
        for _ in range(1500):  # all at once, faster than any stream drains: the oldest are lost
            server.services.events.publish(BackendEvent(EventKind.STATUS, 0, "running", ""))
        message = await stream.next_event("resync")
        assert message.data["lost"] >= 500


async def test_the_stream_ends_when_its_session_ends(server: LoopbackServer, api: APIClient) -> None:
    session_id = await api.new_session()
    async with open_stream(server, session_id) as stream:
        await stream.next_event("ready")
        await server.services.sessions.end(session_id)
        assert await stream.ended()


async def test_the_stream_ends_when_its_user_loses_the_permission(server: LoopbackServer, api: APIClient) -> None:
    async with open_stream(server, await api.new_session()) as stream:
        await stream.next_event("ready")
        server.services.users = RoleUsers("user")
        assert await stream.ended()


async def test_a_client_leaving_unsubscribes_its_stream(server: LoopbackServer, api: APIClient) -> None:
    hub = server.services.events
    before = hub.subscriber_count
    async with open_stream(server, await api.new_session()) as stream:
        await stream.next_event("ready")
        assert hub.subscriber_count == before + 1
    for _ in range(1000):  # the server notices the disconnect on its own time
        if hub.subscriber_count == before:
            break
        await asyncio.sleep(0.01)
    assert hub.subscriber_count == before


async def test_an_open_stream_does_not_hold_up_the_server_exit(data_dir: Path) -> None:
    """Uvicorn waits for open responses before it stops; a stream must end when the exit starts."""
    async with on_loopback(test_config(data_dir, backend_type_modules=WEB_TYPES)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            session_id = await APIClient(http).new_session()
        async with open_stream(server, session_id) as stream:
            await stream.next_event("ready")
            server.server.should_exit = True
            assert await stream.ended()
            await server.task
        assert server.services.events.subscriber_count == 0
