"""An async client for SwarmUI's API (``POST /API/<Route>``), for a SwarmUI server or a
swarmkeeper one. It knows the protocol, not our registry: sessions, the error shapes, and the
retry SwarmUI's own clients do on ``invalid_session_id``.

    async with SwarmClient("http://127.0.0.1:7801") as swarm:
        backends = await swarm.call("ListBackends", nonreal=True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

MAX_BODY = 64 * 1024 * 1024


class SwarmError(Exception):
    """Base of the errors this client raises; the message is readable as a status reason."""


class SwarmUnreachable(SwarmError):
    """The server could not be reached (refused, unresolvable, timed out, closed the socket)."""


class SwarmProtocolError(SwarmError):
    """The server answered something that is not SwarmUI's API (HTML, non-JSON, too large)."""


class SwarmAPIError(SwarmError):
    """The server answered with ``{"error": ...}`` (and maybe an ``error_id``)."""

    def __init__(self, message: str, error_id: str | None = None, status_code: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.status_code = status_code


def normalize_address(address: str) -> str:
    """An http(s) base URL without the trailing slash, or ValueError saying what is wrong."""
    text = address.strip().rstrip("/")
    url = httpx.URL(text) if text else None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"'{address}' is not an http:// or https:// address")
    return text


class SwarmClient:
    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = normalize_address(base_url)
        self.session_id: str | None = None
        self.session_data: dict[str, Any] = {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=dict(headers or {}), timeout=timeout,
                                       transport=transport)

    async def __aenter__(self) -> SwarmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, route: str, body: Mapping[str, Any], *, timeout: float | None = None) -> httpx.Response:
        """One raw POST; transport failures become SwarmUnreachable."""
        try:
            kwargs: dict[str, Any] = {"json": dict(body)}
            if timeout is not None:
                kwargs["timeout"] = timeout
            return await self._http.post(f"/API/{route}", **kwargs)
        except httpx.TimeoutException:
            raise SwarmUnreachable(f"{self.base_url} did not answer in time") from None
        except httpx.ConnectError as error:
            if "refused" in str(error).lower():
                raise SwarmUnreachable("Connection refused - is the backend running, or is the address "
                                       "correct?") from None
            raise SwarmUnreachable(f"Could not connect to {self.base_url}: {error}") from None
        except httpx.TransportError as error:
            raise SwarmUnreachable(f"Connection to {self.base_url} failed: {error}") from None

    @staticmethod
    def decode(response: httpx.Response) -> dict[str, Any]:
        """The JSON object of an answer, or SwarmProtocolError / SwarmAPIError."""
        if len(response.content) > MAX_BODY:
            raise SwarmProtocolError(f"The answer was too large ({len(response.content)} bytes)")
        try:
            data = json.loads(response.content)
        except ValueError:
            kind = "an HTML page" if response.content.lstrip()[:1] == b"<" else "something that is not JSON"
            raise SwarmProtocolError(f"The server answered {kind} (HTTP {response.status_code}), not SwarmUI's "
                                     "API") from None
        if not isinstance(data, dict):
            raise SwarmProtocolError(f"The server answered a JSON {type(data).__name__}, not an object")
        if "error" in data:
            raise SwarmAPIError(str(data["error"]), data.get("error_id"), response.status_code)
        return data

    async def new_session(self, *, timeout: float | None = None) -> dict[str, Any]:
        data = self.decode(await self.post("GetNewSession", {}, timeout=timeout))
        if not isinstance(data.get("session_id"), str):
            raise SwarmProtocolError("Failed to get session ID from remote swarm.")
        self.session_id = data["session_id"]
        self.session_data = data
        return data

    async def call(self, route: str, **params: Any) -> dict[str, Any]:
        """Call a route with a session (made on first use, and again once if the server forgot it)."""
        for attempt in range(2):
            if self.session_id is None:
                await self.new_session()
            try:
                return self.decode(await self.post(route, {"session_id": self.session_id, **params}))
            except SwarmAPIError as error:
                if error.error_id != "invalid_session_id" or attempt:
                    raise
                self.session_id = None
        raise AssertionError("unreachable")
