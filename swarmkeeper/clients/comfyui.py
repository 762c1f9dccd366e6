"""An async client for ComfyUI's server protocol: HTTP routes over httpx, events over websockets.

It knows ComfyUI's wire format and nothing of swarmkeeper's registry. Every library error is
turned into :mod:`swarmkeeper.clients.errors` in one place, :func:`map_errors`, so callers catch
``ComfyError`` and show its ``message``. What a real ComfyUI sends is described in
``shared/reference/comfyui-api.md``::

    async with ComfyClient("http://127.0.0.1:8188") as comfy:
        async with comfy.connect_events(client_id) as events:
            queued = await comfy.queue_prompt(graph, client_id)
            async for event in events:
                if isinstance(event, dict) and event["type"] == "execution_success":
                    break
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import mimetypes
import socket
import urllib.parse
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType
from typing import Any, Self

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from swarmkeeper.clients.errors import (
    REFUSED_MESSAGE,
    ComfyError,
    ComfyProtocolError,
    ComfyRequestError,
    ComfyTimeout,
    ComfyUnreachable,
)
from swarmkeeper.clients.http1 import BadHTTP, HTTP1Client, TooLarge

MIB = 1024 * 1024
#: Cap on a JSON answer (/object_info is ~0.5 MB; 64 MiB means something is wrong).
MAX_JSON_BYTES = 64 * MIB
#: Cap on a file from /view and on one websocket message (preview images travel there).
MAX_FILE_BYTES = 512 * MIB

JSONObject = dict[str, Any]


# --- addresses -------------------------------------------------------------------------------


def _normalise_url(raw: str) -> str:
    """``raw`` as ``scheme://netloc[/path]``, or ``ValueError`` naming the problem."""
    text = raw.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"Invalid backend address {raw!r}: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"Backend address must start with http:// or https:// (got {raw!r}).")
    if not parts.hostname:
        raise ValueError(f"Backend address has no host (got {raw!r}).")
    if parts.query or parts.fragment:
        raise ValueError(f"Backend address must not have a query or fragment (got {raw!r}).")
    if port == 0:
        raise ValueError(f"Backend address has port 0 (got {raw!r}).")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class Address:
    """A validated ComfyUI base URL: ``http(s)://host[:port][/prefix]``, no trailing ``/``.

    ``Address(raw)`` normalises ``raw`` once, when built, or raises ``ValueError`` saying what
    is wrong with it.
    """

    url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _normalise_url(self.url))

    @classmethod
    def parse(cls, raw: str) -> Address:
        """The same as ``Address(raw)``."""
        return cls(raw)

    @property
    def ws_url(self) -> str:
        """The matching ``ws://`` or ``wss://`` base."""
        return "ws" + self.url.removeprefix("http")

    def __str__(self) -> str:
        return self.url


# --- the error boundary ----------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _unreachable(exc: BaseException) -> ComfyUnreachable:
    """Name the reason a connection could not be made or was lost."""
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return ComfyUnreachable(REFUSED_MESSAGE)
        if isinstance(cause, socket.gaierror):
            return ComfyUnreachable("Unknown host - is the backend address correct?")
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return ComfyUnreachable("No route to the backend's host - is the address correct?")
        if isinstance(cause, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return ComfyUnreachable("The connection to the backend was lost.")
    return ComfyUnreachable(f"Could not reach the backend: {str(exc)[:120] or type(exc).__name__}.")


def _from_httpx(exc: httpx.HTTPError, timeout: float) -> ComfyError:
    """Map one httpx error (no httpx type escapes this module)."""
    if isinstance(exc, httpx.TimeoutException):
        return ComfyTimeout(f"The backend did not answer within {timeout:g} s.")
    if isinstance(exc, httpx.ConnectError):
        return _unreachable(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        # h11 says "Server disconnected ..." for a closed socket; anything else is bad HTTP.
        if "disconnected" in str(exc).lower():
            return ComfyUnreachable("The backend closed the connection without answering.")
        return ComfyProtocolError("The backend's answer is not valid HTTP - is this a ComfyUI address?")
    if isinstance(exc, httpx.NetworkError):
        return _unreachable(exc)
    if isinstance(exc, httpx.DecodingError):
        return ComfyProtocolError("The backend's answer could not be decoded.")
    return ComfyError(f"Request to the backend failed: {str(exc)[:120] or type(exc).__name__}.")


def _from_websockets(exc: Exception) -> ComfyError:
    """Map one websockets error."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return ComfyRequestError(
            f"The backend refused the websocket with HTTP {status} - is this a ComfyUI address?",
            status=status,
            body=exc.response.body.decode(errors="replace") if exc.response.body else "",
        )
    if isinstance(exc, ConnectionClosedError):
        if exc.sent is not None and exc.sent.code == 1009:  # we refused an oversized message
            return ComfyProtocolError("A websocket message from the backend was larger than allowed.")
        return ComfyUnreachable("The websocket connection to the backend was lost.")
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return ComfyProtocolError("The backend did not accept a websocket - is this a ComfyUI address?")
    return _unreachable(exc)


def _too_large(exc: TooLarge, limit: int) -> ComfyProtocolError:
    if exc.declared is not None:
        return ComfyProtocolError(f"The backend's answer is too large ({exc.declared // MIB} MiB).")
    return ComfyProtocolError(f"The backend's answer is larger than {limit // MIB} MiB.")


@contextlib.contextmanager
def map_errors(timeout: float, limit: int = 0) -> Iterator[None]:
    """The one boundary: httpx, http1, websockets, OS and timeout errors become ``ComfyError``s
    (``limit`` is the size cap of the answer, for the message when it is exceeded)."""
    try:
        yield
    except ComfyError:
        raise
    except httpx.HTTPError as exc:
        raise _from_httpx(exc, timeout) from exc
    except EOFError as exc:  # http1: the server closed the connection before its answer was whole
        raise ComfyUnreachable("The backend closed the connection without answering.") from exc
    except BadHTTP as exc:
        raise ComfyProtocolError("The backend's answer is not valid HTTP - is this a ComfyUI address?") from exc
    except TooLarge as exc:
        raise _too_large(exc, limit) from exc
    except TimeoutError as exc:
        raise ComfyTimeout(f"The backend did not answer within {timeout:g} s.") from exc
    except (websockets.WebSocketException, OSError) as exc:
        raise _from_websockets(exc) from exc


# --- bodies ----------------------------------------------------------------------------------


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, refusing to hold more than ``limit`` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ComfyProtocolError(f"The backend's answer is too large ({int(declared) // MIB} MiB).")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ComfyProtocolError(f"The backend's answer is larger than {limit // MIB} MiB.")
        chunks.append(chunk)
    return b"".join(chunks)


def _encode_json(value: Any) -> bytes:
    """A JSON request body, encoded as httpx encodes ``json=``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _decode_json(raw: bytes, route: str) -> Any:
    """Parse a JSON body, naming what came instead when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        start = raw[:64].lstrip().lower()
        what = "HTML" if start.startswith((b"<!doctype", b"<html")) else "something that is not JSON"
        raise ComfyProtocolError(f"The backend answered {route} with {what} - is this ComfyUI?") from None


def _error_message(status: int, body: Any) -> str:
    """A one-line reason from ComfyUI's error JSON (``error.message`` plus node errors)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        details = [error["message"]]
        node_errors = body.get("node_errors") or {}
        for node_id, info in node_errors.items() if isinstance(node_errors, dict) else ():
            for item in (info or {}).get("errors", [])[:3]:
                details.append(f"node {node_id}: {item.get('message', '')} ({item.get('details', '')})")
        return "; ".join(details)[:500]
    if isinstance(error, str):
        return error[:500]
    text = body if isinstance(body, str) else json.dumps(body)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"The backend answered HTTP {status}" + (f": {first[:200]}" if first else ".")


def _expect(value: Any, kind: type, route: str) -> Any:
    """Check the top-level shape of a decoded answer."""
    if not isinstance(value, kind):
        raise ComfyProtocolError(f"The backend answered {route} with an unexpected shape - is this ComfyUI?")
    return value


# --- websocket events ------------------------------------------------------------------------


class BinaryEventType(IntEnum):
    """The 4-byte big-endian type that starts each binary websocket frame (``protocol.py``)."""

    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


IMAGE_FORMATS = {1: "image/jpeg", 2: "image/png"}


@dataclass(frozen=True)
class BinaryEvent:
    """One binary websocket frame: its event type and the payload after the type."""

    event_type: int
    payload: bytes

    @classmethod
    def parse(cls, frame: bytes) -> BinaryEvent:
        """Split a frame; raise ``ComfyProtocolError`` when it is too short to carry a type."""
        if len(frame) < 4:
            raise ComfyProtocolError("The backend sent a binary websocket frame that is too short.")
        return cls(int.from_bytes(frame[:4], "big"), frame[4:])

    @property
    def metadata(self) -> JSONObject:
        """The JSON header of a ``PREVIEW_IMAGE_WITH_METADATA`` frame (else ``{}``)."""
        if self.event_type != BinaryEventType.PREVIEW_IMAGE_WITH_METADATA or len(self.payload) < 4:
            return {}
        size = int.from_bytes(self.payload[:4], "big")
        try:
            value = json.loads(self.payload[4 : 4 + size])
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def image_type(self) -> str | None:
        """The image's MIME type for preview frames, else None."""
        if self.event_type == BinaryEventType.PREVIEW_IMAGE and len(self.payload) >= 4:
            return IMAGE_FORMATS.get(int.from_bytes(self.payload[:4], "big"))
        if self.event_type == BinaryEventType.PREVIEW_IMAGE_WITH_METADATA:
            kind = self.metadata.get("image_type")
            return kind if isinstance(kind, str) else None
        return None

    @property
    def image(self) -> bytes | None:
        """The encoded image bytes of a preview frame, else None."""
        if self.event_type == BinaryEventType.PREVIEW_IMAGE:
            return self.payload[4:]
        if self.event_type == BinaryEventType.PREVIEW_IMAGE_WITH_METADATA and len(self.payload) >= 4:
            return self.payload[4 + int.from_bytes(self.payload[:4], "big") :]
        return None


ComfyEvent = JSONObject | BinaryEvent


#: How ComfyUI's ``json.dumps({"type": ..., "data": ...})`` starts every text frame.
TYPE_PREFIX = '{"type": "'


def peek_type(text: str) -> str | None:
    """The type of a text frame written as ComfyUI writes them, read without parsing the frame
    (None when it is not written so: parse it to know)."""
    if not text.startswith(TYPE_PREFIX):
        return None
    end = text.find('"', len(TYPE_PREFIX))
    kind = text[len(TYPE_PREFIX) : end] if end > 0 else ""
    return kind if kind and "\\" not in kind else None


def parse_text_event(text: str) -> JSONObject:
    """A text frame as ``{"type": str, "data": ...}``; anything else is a protocol error."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ComfyProtocolError("The backend sent a websocket message that is not JSON.") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ComfyProtocolError("The backend sent a websocket message without a type.")
    return value


class ComfyEvents:
    """ComfyUI's event websocket for one ``clientId``.

    Use ``async with client.connect_events(cid) as events`` (or ``await`` it, then ``aclose()``),
    then ``async for event in events``: text frames come as dicts, binary ones as
    :class:`BinaryEvent`. Iteration ends when the socket is closed normally (by either side);
    a lost connection raises ``ComfyUnreachable``. ``sid`` is the id from the first ``status``.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        max_size: int,
        feature_flags: Mapping[str, Any] | None,
    ) -> None:
        self.client_id = client_id
        self.sid: str | None = None
        self._url = url
        self._headers = dict(headers)
        self._timeout = timeout
        self._max_size = max_size
        self._feature_flags = dict(feature_flags) if feature_flags is not None else None
        self._ws: ClientConnection | None = None

    async def connect(self) -> Self:
        """Open the socket and send ``feature_flags`` when they were given."""
        with map_errors(self._timeout):
            self._ws = await websockets.connect(
                self._url,
                additional_headers=self._headers,
                open_timeout=self._timeout,
                max_size=self._max_size,
                proxy=None,
                compression=None,
            )
            if self._feature_flags is not None:
                await self.send({"type": "feature_flags", "data": self._feature_flags})
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self.connect().__await__()

    async def __aenter__(self) -> Self:
        return self if self._ws is not None else await self.connect()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket (never raises)."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), self._timeout)

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one JSON message to the server."""
        with map_errors(self._timeout):
            await self._socket().send(json.dumps(message))

    async def recv(self) -> ComfyEvent:
        """The next event, however long it takes (bound it with ``asyncio.timeout``).

        Raises ``ComfyUnreachable`` when the socket is closed or lost.
        """
        return self._parse(await self.recv_frame())

    async def recv_frame(self) -> str | bytes:
        """The next frame as it came (text or binary), as :meth:`recv` but not parsed."""
        with map_errors(self._timeout):
            try:
                return await self._socket().recv()
            except ConnectionClosedOK:
                raise ComfyUnreachable("The backend closed the websocket.") from None

    def __aiter__(self) -> AsyncIterator[ComfyEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ComfyEvent]:
        async for frame in self.frames():
            yield self._parse(frame)

    async def frames(self) -> AsyncIterator[str | bytes]:
        """The frames as they came (text or binary), for a relay that passes them on unchanged;
        :func:`parse_text_event` and :meth:`BinaryEvent.parse` read them. Ends and fails as
        iterating over events does."""
        with map_errors(self._timeout):
            async for frame in self._socket():
                yield frame

    def _parse(self, frame: str | bytes) -> ComfyEvent:
        if isinstance(frame, bytes):
            return BinaryEvent.parse(frame)
        event = parse_text_event(frame)
        data = event.get("data")
        if self.sid is None and event["type"] == "status" and isinstance(data, dict):
            self.sid = data.get("sid")
        return event

    def _socket(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("ComfyEvents is not connected: use 'async with' or 'await' first")
        return self._ws


# --- the client ------------------------------------------------------------------------------


class ComfyClient:
    """One ComfyUI server's HTTP routes and event websocket.

    ``timeout`` bounds every call as a whole (connect, send, and reading the full answer), not
    each network operation, so a server that trickles bytes still fails in time. JSON answers
    are capped at ``max_json_bytes``, files and websocket messages at ``max_file_bytes``.
    Environment proxy settings are ignored. Errors: see :mod:`swarmkeeper.clients.errors`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_json_bytes: int = MAX_JSON_BYTES,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.address = Address.parse(base_url)
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.max_json_bytes = max_json_bytes
        self.max_file_bytes = max_file_bytes
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        #: The lean path for JSON calls (None for https, or with a test transport: httpx then).
        self._fast = HTTP1Client.for_url(self.address.url, self.headers) if transport is None else None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections; calls made after this raise ``RuntimeError``."""
        self._closed = True
        if self._fast is not None:
            self._fast.close()
        if self._http is not None:
            await self._http.aclose()

    # ----- transport

    def _httpx(self) -> httpx.AsyncClient:
        """httpx, for the calls the lean path does not make (built when first needed: building it
        costs milliseconds)."""
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.address.url, headers=self.headers, timeout=self.timeout,
                                           transport=self._transport, trust_env=False)
        return self._http

    async def _send(self, method: str, path: str, limit: int, **kwargs: Any) -> tuple[int, bytes]:
        """One request under the whole-call deadline; returns status and capped body. Calls with
        at most a JSON body (no query, form or files) take the lean path when there is one."""
        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        with map_errors(self.timeout, limit):
            async with asyncio.timeout(self.timeout):
                if self._fast is not None and all(value is None for key, value in kwargs.items() if key != "json"):
                    body = None if kwargs.get("json") is None else _encode_json(kwargs["json"])
                    return await self._fast.request(method, path, body, content_type="application/json", limit=limit)
                async with self._httpx().stream(method, path, **kwargs) as response:
                    return response.status_code, await _read_capped(response, limit)

    def _check_status(self, status: int, raw: bytes) -> None:
        """Raise ``ComfyRequestError`` for an HTTP error, ``ComfyProtocolError`` for a redirect."""
        if 300 <= status < 400:
            raise ComfyProtocolError(f"The backend answered with a redirect (HTTP {status}).")
        if status >= 400:
            text = raw.decode(errors="replace")
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            raise ComfyRequestError(_error_message(status, body), status=status, body=body)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose answer is JSON."""
        status, raw = await self._send(method, path, self.max_json_bytes, **kwargs)
        self._check_status(status, raw)
        return _decode_json(raw, path)

    async def _no_content(self, method: str, path: str, **kwargs: Any) -> None:
        """A request whose answer carries nothing (ComfyUI's POSTs to /free, /queue, ...)."""
        status, raw = await self._send(method, path, self.max_json_bytes, **kwargs)
        self._check_status(status, raw)

    # ----- information

    async def object_info(self, node_class: str | None = None) -> dict[str, JSONObject]:
        """``GET /object_info`` (or ``/object_info/<class>``): node classes by name."""
        path = "/object_info" if node_class is None else f"/object_info/{urllib.parse.quote(node_class)}"
        info = _expect(await self._json("GET", path), dict, path)
        if not all(isinstance(v, dict) for v in info.values()):
            raise ComfyProtocolError(f"The backend answered {path} with an unexpected shape - is this ComfyUI?")
        return info

    async def system_stats(self) -> JSONObject:
        """``GET /system_stats``: ``{"system": {...}, "devices": [...]}``."""
        stats = _expect(await self._json("GET", "/system_stats"), dict, "/system_stats")
        _expect(stats.get("system"), dict, "/system_stats")
        return stats

    async def features(self) -> JSONObject:
        """``GET /features``: server feature flags (what SwarmUI's idle monitor polls)."""
        return _expect(await self._json("GET", "/features"), dict, "/features")

    async def models(self, folder: str | None = None) -> list[str]:
        """``GET /models`` (folder names) or ``/models/<folder>`` (file names in it)."""
        path = "/models" if folder is None else f"/models/{urllib.parse.quote(folder)}"
        return _expect(await self._json("GET", path), list, path)

    # ----- memory

    async def free(self, unload_models: bool = True, free_memory: bool = False) -> None:
        """``POST /free``: ComfyUI acts on it between prompts (unload models, reset caches)."""
        await self._no_content("POST", "/free", json={"unload_models": unload_models, "free_memory": free_memory})

    # ----- prompts and queue

    async def queue_prompt(
        self,
        prompt: Mapping[str, Any],
        client_id: str,
        prompt_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        front: bool = False,
    ) -> JSONObject:
        """``POST /prompt``: ``{"prompt_id", "number", "node_errors"}``.

        A graph that fails validation raises ``ComfyRequestError`` (status 400, ``error_type``
        such as ``invalid_prompt`` or ``prompt_outputs_failed_validation``).
        """
        body: JSONObject = {"prompt": dict(prompt), "client_id": client_id}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        if extra_data is not None:
            body["extra_data"] = dict(extra_data)
        if front:
            body["front"] = True
        answer = _expect(await self._json("POST", "/prompt", json=body), dict, "/prompt")
        if not isinstance(answer.get("prompt_id"), str):
            raise ComfyProtocolError("The backend answered /prompt without a prompt_id - is this ComfyUI?")
        return answer

    async def get_prompt_info(self) -> JSONObject:
        """``GET /prompt``: ``{"exec_info": {"queue_remaining": N}}`` (running + pending)."""
        return _expect(await self._json("GET", "/prompt"), dict, "/prompt")

    async def get_queue(self) -> JSONObject:
        """``GET /queue``: ``{"queue_running": [...], "queue_pending": [...]}``."""
        return _expect(await self._json("GET", "/queue"), dict, "/queue")

    async def delete_queued(self, ids: Iterable[str]) -> None:
        """``POST /queue {"delete": ids}``: drop pending prompts (not the running one)."""
        await self._no_content("POST", "/queue", json={"delete": list(ids)})

    async def clear_queue(self) -> None:
        """``POST /queue {"clear": true}``: drop every pending prompt."""
        await self._no_content("POST", "/queue", json={"clear": True})

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """``POST /interrupt``: the running prompt stops at its next node boundary.

        With ``prompt_id`` only that prompt is interrupted, and only if it is the one running.
        """
        await self._no_content("POST", "/interrupt", json={} if prompt_id is None else {"prompt_id": prompt_id})

    # ----- history and files

    async def history(self, prompt_id: str | None = None, max_items: int | None = None) -> JSONObject:
        """``GET /history[/<id>]``: finished prompts by id (``{}`` while queued or unknown)."""
        path = "/history" if prompt_id is None else f"/history/{urllib.parse.quote(prompt_id)}"
        params = {"max_items": str(max_items)} if max_items is not None else None
        return _expect(await self._json("GET", path, params=params), dict, path)

    async def delete_history(self, ids: Iterable[str]) -> None:
        """``POST /history {"delete": ids}``."""
        await self._no_content("POST", "/history", json={"delete": list(ids)})

    async def clear_history(self) -> None:
        """``POST /history {"clear": true}``."""
        await self._no_content("POST", "/history", json={"clear": True})

    async def view(
        self, filename: str, subfolder: str = "", type: str = "output", extra: Mapping[str, str] | None = None
    ) -> bytes:
        """``GET /view``: the bytes of an output, input or temp file (404 → ``ComfyRequestError``).

        ``extra`` adds query parameters (``preview``, ``channel``).
        """
        params = {**(extra or {}), "filename": filename, "subfolder": subfolder, "type": type}
        status, raw = await self._send("GET", "/view", self.max_file_bytes, params=params)
        self._check_status(status, raw)
        return raw

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", type: str = "input", overwrite: bool = False
    ) -> JSONObject:
        """``POST /upload/image`` (multipart): ``{"name", "subfolder", "type"}`` as stored.

        Without ``overwrite``, ComfyUI renames a same-named file with other content (``x (1).png``).
        """
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        form = {"subfolder": subfolder, "type": type, "overwrite": "true" if overwrite else "false"}
        answer = await self._json("POST", "/upload/image", data=form, files={"image": (filename, data, mime)})
        return _expect(answer, dict, "/upload/image")

    # ----- events

    def connect_events(self, client_id: str, *, feature_flags: Mapping[str, Any] | None = None) -> ComfyEvents:
        """The event websocket ``/ws?clientId=<client_id>``, to ``async with`` or ``await``.

        With ``feature_flags`` (e.g. ``{"supports_preview_metadata": True}``), they are sent as
        the first message, and ComfyUI answers with its own ``feature_flags`` event.
        """
        url = f"{self.address.ws_url}/ws?clientId={urllib.parse.quote(client_id)}"
        return ComfyEvents(
            url,
            client_id,
            headers=self.headers,
            timeout=self.timeout,
            max_size=self.max_file_bytes,
            feature_flags=feature_flags,
        )
