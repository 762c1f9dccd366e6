"""The push stream with accounts on, on a real socket (issue 13, point 11): a caller who loses the
right to see backends stops receiving them at once, whatever took it away (a role change, the
user's removal, a logout, a revoked API key), not at the next periodic check.

The streams here re-check on their own only every 60 s, so a stream that ends within a second
was ended by the change itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from swarmkeeper.accounts.callers import account_user
from swarmkeeper.accounts.passwords import client_prehash
from swarmkeeper.accounts.service import Accounts
from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.app import FEATURES
from swarmkeeper.web.feature import web_feature
from swarmkeeper.web.stream import StreamPolicy
from tests.accounts_support import PASSWORD, write_settings
from tests.servers import LoopbackServer, on_loopback, test_config
from tests.web.support import sse_messages

#: Periodic checks far apart: only the change itself can end a stream within a second.
SLOW = StreamPolicy(heartbeat=60.0, check_every=30.0, recheck_every=60.0)


@dataclass
class Team:
    """A server with accounts on, an owner's session, and the user ``pat`` (poweruser)."""

    server: LoopbackServer
    http: httpx.AsyncClient
    owner: str

    @property
    def accounts(self) -> Accounts:
        return self.server.services.accounts

    async def call(self, route: str, body: dict[str, object], **headers: str) -> dict[str, object]:
        response = await self.http.post(f"/API/{route}", json=body, headers=headers)
        self.http.cookies.clear()
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def token(self, name: str) -> str:
        response = await self.http.post("/API/Login", json={"username": name, "password": PASSWORD})
        token = response.cookies[COOKIE]
        self.http.cookies.clear()
        return token

    async def session(self, **headers: str) -> str:
        return str((await self.call("GetNewSession", {}, **headers))["session_id"])

    async def as_owner(self, route: str, **body: object) -> None:
        answer = await self.call(route, {"session_id": self.owner, **body})
        assert "error" not in answer, answer


@pytest.fixture
async def team(data_dir: Path) -> AsyncIterator[Team]:
    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": False})
    features = [web_feature(SLOW) if feature.name == "web" else feature for feature in FEATURES]
    async with on_loopback(test_config(data_dir, require_accounts=True), features=features) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        accounts = server.services.accounts
        for name, role in (("root", "owner"), ("pat", "poweruser")):
            await accounts.add_user(name, client_prehash(name, PASSWORD), role)
        team = Team(server, http, "")
        team.owner = await team.session(Cookie=f"{COOKIE}={await team.token('root')}")
        yield team


@contextlib.asynccontextmanager
async def stream_of(team: Team, session_id: str, **headers: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Open the stream, wait for ``ready``; yields a function that waits (at most 1 s) for its end."""
    async with httpx.AsyncClient(base_url=team.server.url, timeout=10) as http, \
            http.stream("GET", "/events/backends", params={"session_id": session_id}, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        messages = sse_messages(response.aiter_lines())
        assert (await anext(messages)).event == "ready"

        async def ended() -> None:
            async with asyncio.timeout(1.0):
                async for message in messages:
                    assert message.event != "backend", message  # nothing more once the right is gone

        yield ended


async def test_a_role_change_ends_the_stream_at_once(team: Team) -> None:
    session = await team.session(Cookie=f"{COOKIE}={await team.token('pat')}")
    async with stream_of(team, session) as ended:
        await team.as_owner("AdminSetUserRole", name="pat", role="user")
        await team.as_owner("AddNewBackend", type_id="comfyui_api")  # an event pat must not see
        await ended()


async def test_removing_the_user_ends_the_stream_at_once(team: Team) -> None:
    session = await team.session(Cookie=f"{COOKIE}={await team.token('pat')}")
    async with stream_of(team, session) as ended:
        await team.as_owner("AdminDeleteUser", name="pat")
        await ended()


async def test_logging_out_ends_the_stream_at_once(team: Team) -> None:
    token = await team.token("pat")
    session = await team.session(Cookie=f"{COOKIE}={token}")
    async with stream_of(team, session) as ended:
        assert await team.call("Logout", {"session_id": session}, Cookie=f"{COOKIE}={token}") == {"success": "true"}
        await ended()


async def test_revoking_the_key_ends_the_stream_at_once(team: Team) -> None:
    account = await team.accounts.account("pat")
    key, text = await team.accounts.create_key(account_user(account), "dashboard")
    bound = await team.session(Authorization=f"Bearer {text}")  # a session opened with the key
    async with stream_of(team, bound) as ended_bound, \
            stream_of(team, await team.session(Cookie=f"{COOKIE}={await team.token('pat')}"),
                      Authorization=f"Bearer {text}") as ended_shown:  # the key shown on the stream itself
        await team.call("RevokeAPIKey", {"session_id": team.owner, "id": key.id})
        await ended_bound()
        await ended_shown()


async def test_a_stream_of_a_user_who_keeps_the_right_stays_open(team: Team) -> None:
    session = await team.session(Cookie=f"{COOKIE}={await team.token('pat')}")
    async with httpx.AsyncClient(base_url=team.server.url, timeout=10) as http, \
            http.stream("GET", "/events/backends", params={"session_id": session}) as response:
        messages = sse_messages(response.aiter_lines())
        assert (await anext(messages)).event == "ready"
        await team.as_owner("AdminSetUserRole", name="pat", role="admin")  # a change, but not a loss
        added = await team.call("AddNewBackend", {"session_id": team.owner, "type_id": "comfyui_api"})
        message = await anext(messages)
        assert (message.event, message.data["backend_id"]) == ("backend", added["id"])
