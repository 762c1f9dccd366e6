"""Helpers for tests of accounts, keys and the audit log: a server with accounts on, reached from a
remote address (so the localhost bypass never applies), and ways to make users, logins, sessions
and keys."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from swarmkeeper import fds
from swarmkeeper.accounts.callers import account_user
from swarmkeeper.accounts.passwords import client_prehash
from swarmkeeper.accounts.service import Accounts
from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.config import ServerSettings
from swarmkeeper.services import Services
from tests.servers import APIClient, in_process, test_config

PASSWORD = "correct horse battery staple"
REMOTE = ("203.0.113.7", 40000)
ROLES = ("owner", "admin", "poweruser", "user", "guest")


def write_settings(data_dir: Path, **sections: dict[str, Any]) -> None:
    """A Settings.fds whose named sections (``network``, ``userauthorization``...) hold these values."""
    settings = ServerSettings()
    changed = {name: dataclasses.replace(getattr(settings, name), **values) for name, values in sections.items()}
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "Settings.fds").write_text(fds.dumps(dataclasses.replace(settings, **changed).to_fds()))


@dataclasses.dataclass
class Accounted:
    """A test's handle on a running server with accounts on."""

    api: APIClient

    @property
    def http(self) -> httpx.AsyncClient:
        return self.api.http

    @property
    def services(self) -> Services:
        assert self.api.services is not None
        return self.api.services

    @property
    def accounts(self) -> Accounts:
        return self.services.accounts

    async def add_user(self, name: str, role: str, password: str = PASSWORD) -> None:
        await self.accounts.add_user(name, client_prehash(name, password), role)

    async def login(self, name: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
        """Call Login; the client keeps no cookie (tests send the ones they mean to)."""
        response = await self.http.post("/API/Login", json={"username": name, "password": password}, **kwargs)
        self.http.cookies.clear()
        return response

    async def token_for(self, name: str, password: str = PASSWORD) -> str:
        response = await self.login(name, password)
        assert response.json() == {"success": "true"}, response.text
        token = response.cookies.get(COOKIE)
        assert token, response.headers
        return token

    async def new_session(self, *, token: str | None = None, key: str | None = None,
                          headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.call("GetNewSession", token=token, key=key, headers=headers)

    async def session_for(self, name: str) -> str:
        response = await self.new_session(token=await self.token_for(name))
        assert "session_id" in response.json(), response.text
        return str(response.json()["session_id"])

    async def key_for(self, name: str, role: str = "", expires_days: float = 0) -> str:
        account = await self.accounts.account(name)
        _, text = await self.accounts.create_key(account_user(account), f"key of {name}", role, expires_days)
        return text

    async def call(self, route: str, body: dict[str, Any] | None = None, *, session: str | None = None,
                   key: str | None = None, token: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """POST /API/<route> with exactly the credentials given."""
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        if token is not None:
            sent["Cookie"] = f"{COOKIE}={token}"
        payload = dict(body or {})
        if session is not None:
            payload["session_id"] = session
        response = await self.http.post(f"/API/{route}", json=payload, headers=sent)
        self.http.cookies.clear()
        return response

    async def ok(self, route: str, body: dict[str, Any] | None = None, **credentials: Any) -> dict[str, Any]:
        response = await self.call(route, body, **credentials)
        assert response.status_code == 200, response.text
        data = response.json()
        assert "error" not in data and "error_id" not in data, data
        return dict(data)

    async def error(self, route: str, body: dict[str, Any] | None = None, **credentials: Any) -> str:
        """SwarmUI's route-level refusal: HTTP 200 with only an ``error`` key."""
        response = await self.call(route, body, **credentials)
        assert response.status_code == 200, response.text
        assert list(response.json()) == ["error"], response.text
        return str(response.json()["error"])


@contextlib.asynccontextmanager
async def accounts_server(data_dir: Path, *, client: tuple[str, int] = REMOTE, bypass: bool = False,
                          network: dict[str, Any] | None = None, **config: Any) -> AsyncIterator[Accounted]:
    """An in-process server started with --require_accounts, called from ``client``."""
    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": bypass}, network=network or {})
    async with in_process(test_config(data_dir, require_accounts=True, **config), client=client) as api:
        yield Accounted(api)
