"""An async client for SwarmUI's API (``POST /API/<Route>``), for a SwarmUI server or a
swarmkeeper one. It knows the protocol, not our registry: sessions, the error shapes, and the
retry SwarmUI's own clients do on ``invalid_session_id``.

    async with SwarmClient("http://127.0.0.1:7801", headers={"Authorization": "Bearer x"}) as swarm:
        backends = await swarm.call("ListBackends", nonreal=True, timeout=10)

Every request has a hard deadline (the whole answer, not just each read), answers are read as a
stream and refused past a size cap, and every library error becomes a :class:`SwarmError` here, at
one boundary, with a message fit to be a backend's status reason. Header values are never part of
any message.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from swarmkeeper.clients.errors import REFUSED_MESSAGE, causes

MIB = 1024 * 1024
#: Largest answer read (a ListBackends of thousands of backends is a few MiB).
MAX_BODY = 64 * MIB
DEFAULT_TIMEOUT = 30.0


class SwarmError(Exception):
    """Base of the errors this client raises; ``message`` is readable as a status reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SwarmUnreachable(SwarmError):
    """The server could not be reached (refused, unresolvable, closed the socket)."""


class SwarmTimeout(SwarmUnreachable):
    """The server did not answer completely within the deadline."""


class SwarmProtocolError(SwarmError):
    """The server answered something that is not SwarmUI's API (HTML, non-JSON, too large)."""


class SwarmAuthRefused(SwarmError):
    """The server's global gate (``Network.RequiredAuthorization``) refused the request: HTTP 401
    with SwarmUI's plain-text ``Unauthorized``."""


class SwarmAPIError(SwarmError):
    """The server answered with ``{"error": ...}`` (and maybe an ``error_id``)."""

    def __init__(self, message: str, error_id: str | None = None, status_code: int = 200) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.status_code = status_code


def normalize_address(address: str) -> str:
    """An http(s) base URL without the trailing slash, or ValueError saying what is wrong."""
    text = address.strip().rstrip("/")
    try:
        url = httpx.URL(text) if text else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise ValueError(f"'{address.strip()[:200]}' is not an http:// or https:// address")
    return text


def _is_token(name: str) -> bool:
    """An HTTP header name (RFC 9110 token)."""
    allowed = set("!#$%&'*+-.^_`|~")
    return bool(name) and all(c.isascii() and (c.isalnum() or c in allowed) for c in name)


def valid_header_value(value: str) -> bool:
    """Printable ASCII (and tabs) only: no line breaks that could smuggle another header."""
    return all(c == "\t" or " " <= c <= "~" for c in value)


def parse_header_lines(text: str) -> tuple[dict[str, str], list[int]]:
    """SwarmUI's ``OtherHeaders``: one ``Name: value`` per line. Returns the headers and the
    (1-based) numbers of the lines that could not be used; blank lines are ignored."""
    headers: dict[str, str] = {}
    bad: list[int] = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _is_token(name) or not valid_header_value(value):
            bad.append(number)
            continue
        headers[name] = value
    return headers, bad


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: its status code and body."""

    status: int
    content: bytes


def _unreachable(base_url: str, error: BaseException) -> SwarmUnreachable:
    for cause in causes(error):
        if isinstance(cause, ConnectionRefusedError):
            return SwarmUnreachable(REFUSED_MESSAGE)
        if isinstance(cause, socket.gaierror):
            return SwarmUnreachable(f"Unknown host in {base_url} - is the address correct?")
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return SwarmUnreachable(f"No route to {base_url} - is the address correct?")
    if "refused" in str(error).lower():
        return SwarmUnreachable(REFUSED_MESSAGE)
    return SwarmUnreachable(f"Could not reach {base_url}: {str(error)[:160] or type(error).__name__}")


def _map_httpx(base_url: str, error: httpx.HTTPError, limit: float) -> SwarmError:
    if isinstance(error, httpx.TimeoutException):
        return SwarmTimeout(f"{base_url} did not answer within {limit:g} s")
    if isinstance(error, httpx.RemoteProtocolError):
        if "disconnected" in str(error).lower():
            return SwarmUnreachable(f"{base_url} closed the connection without answering")
        return SwarmProtocolError(f"The answer of {base_url} is not valid HTTP - is this a SwarmUI address?")
    if isinstance(error, httpx.DecodingError):
        return SwarmProtocolError(f"The answer of {base_url} could not be decoded")
    return _unreachable(base_url, error)


class SwarmClient:
    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, max_body: int = MAX_BODY,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = normalize_address(base_url)
        self.timeout = timeout
        self.max_body = max_body
        self.session_id: str | None = None
        self.session_data: dict[str, Any] = {}
        self._sends_authorization = any(name.lower() == "authorization" for name in headers or {})
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=dict(headers or {}), timeout=timeout,
                                       transport=transport, follow_redirects=False)

    async def __aenter__(self) -> SwarmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def server_id(self) -> str | None:
        """The remote's per-process id from its last GetNewSession answer."""
        value = self.session_data.get("server_id")
        return value if isinstance(value, str) else None

    # --- the wire ---

    async def post(self, route: str, body: Mapping[str, Any], *, timeout: float | None = None) -> Answer:
        """One raw POST, the whole answer within ``timeout`` seconds; SwarmError on failure."""
        limit = self.timeout if timeout is None else timeout
        if self._http.is_closed:
            raise SwarmUnreachable(f"The connection to {self.base_url} was closed")
        try:
            async with asyncio.timeout(limit):
                async with self._http.stream("POST", f"/API/{route}", json=dict(body), timeout=limit) as response:
                    return Answer(response.status_code, await self._read(response))
        except TimeoutError:
            raise SwarmTimeout(f"{self.base_url} did not answer within {limit:g} s") from None
        except httpx.HTTPError as error:
            raise _map_httpx(self.base_url, error, limit) from None
        except OSError as error:
            raise _unreachable(self.base_url, error) from None

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise self._too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large(size)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int) -> SwarmProtocolError:
        return SwarmProtocolError(f"The answer of {self.base_url} is too large ({size // MIB} MiB or more; "
                                  f"the limit is {self.max_body // MIB} MiB)")

    def decode(self, answer: Answer) -> dict[str, Any]:
        """The JSON object of an answer, or SwarmProtocolError / SwarmAuthRefused / SwarmAPIError."""
        try:
            data = json.loads(answer.content) if answer.content.strip() else None
        except (ValueError, RecursionError):
            data = None
            if answer.status == 401:
                raise self._auth_refused() from None
        if data is None:
            raise SwarmProtocolError(self._not_api(answer))
        if not isinstance(data, dict):
            raise SwarmProtocolError(f"{self.base_url} answered a JSON {type(data).__name__}, not an object "
                                     f"(HTTP {answer.status}) - is this a SwarmUI address?")
        if "error" in data:
            error_id = data.get("error_id")
            raise SwarmAPIError(str(data["error"])[:500], error_id if isinstance(error_id, str) else None,
                                answer.status)
        return data

    def _auth_refused(self) -> SwarmAuthRefused:
        if self._sends_authorization:
            return SwarmAuthRefused(f"{self.base_url} refused our Authorization header (HTTP 401 Unauthorized) - "
                                    "check this backend's AuthorizationHeader setting")
        return SwarmAuthRefused(f"{self.base_url} requires an Authorization header (HTTP 401 Unauthorized) - set "
                                "this backend's AuthorizationHeader setting")

    def _not_api(self, answer: Answer) -> str:
        start = answer.content.lstrip()[:1]
        kind = "an empty body" if not start else "an HTML page" if start == b"<" else "something that is not JSON"
        return f"{self.base_url} answered {kind} (HTTP {answer.status}), not SwarmUI's API - is this a SwarmUI address?"

    # --- sessions ---

    async def new_session(self, *, timeout: float | None = None) -> dict[str, Any]:
        data = self.decode(await self.post("GetNewSession", {}, timeout=timeout))
        if not isinstance(data.get("session_id"), str) or not data["session_id"]:
            raise SwarmProtocolError("Failed to get session ID from remote swarm.")
        self.session_id = data["session_id"]
        self.session_data = data
        return data

    async def call(self, route: str, /, *, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        """Call a route with a session (made on first use, and again once if the server forgot it)."""
        for attempt in range(2):
            if self.session_id is None:
                await self.new_session(timeout=timeout)
            try:
                return self.decode(await self.post(route, {"session_id": self.session_id, **params}, timeout=timeout))
            except SwarmAPIError as error:
                if error.error_id != "invalid_session_id" or attempt:
                    raise
                self.session_id = None
        raise AssertionError("unreachable")
