"""The client: one ComfyUI server's HTTP routes, and the door to its event websocket."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import urllib.parse
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from swarmkeeper.clients.comfyui.address import Address
from swarmkeeper.clients.comfyui.bodies import decode_json, encode_json, error_message, expect, read_capped
from swarmkeeper.clients.comfyui.boundary import MIB, map_errors
from swarmkeeper.clients.comfyui.events import ComfyEvents, JSONObject
from swarmkeeper.clients.comfyui.feed import PING_INTERVAL, EventFeed, FrameCallback
from swarmkeeper.clients.errors import ComfyProtocolError, ComfyRequestError
from swarmkeeper.clients.http1 import Exchange, HTTP1Client

#: Cap on a JSON answer (/object_info is ~0.5 MB; 64 MiB means something is wrong).
MAX_JSON_BYTES = 64 * MIB
#: Cap on a file from /view and on one websocket message (preview images travel there).
MAX_FILE_BYTES = 512 * MIB


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
                    body = None if kwargs.get("json") is None else encode_json(kwargs["json"])
                    return await self._fast.request(method, path, body, content_type="application/json", limit=limit)
                async with self._httpx().stream(method, path, **kwargs) as response:
                    return response.status_code, await read_capped(response, limit)

    def check_status(self, status: int, raw: bytes) -> None:
        """Raise ``ComfyRequestError`` for an HTTP error, ``ComfyProtocolError`` for a redirect."""
        if 300 <= status < 400:
            raise ComfyProtocolError(f"The backend answered with a redirect (HTTP {status}).")
        if status >= 400:
            text = raw.decode(errors="replace")
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            raise ComfyRequestError(error_message(status, body), status=status, body=body)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose answer is JSON."""
        status, raw = await self._send(method, path, self.max_json_bytes, **kwargs)
        self.check_status(status, raw)
        return decode_json(raw, path)

    async def _no_content(self, method: str, path: str, **kwargs: Any) -> None:
        """A request whose answer carries nothing (ComfyUI's POSTs to /free, /queue, ...)."""
        status, raw = await self._send(method, path, self.max_json_bytes, **kwargs)
        self.check_status(status, raw)

    # ----- information

    async def object_info(self, node_class: str | None = None) -> dict[str, JSONObject]:
        """``GET /object_info`` (or ``/object_info/<class>``): node classes by name."""
        path = "/object_info" if node_class is None else f"/object_info/{urllib.parse.quote(node_class)}"
        info = expect(await self._json("GET", path), dict, path)
        if not all(isinstance(v, dict) for v in info.values()):
            raise ComfyProtocolError(f"The backend answered {path} with an unexpected shape - is this ComfyUI?")
        return info

    async def system_stats(self) -> JSONObject:
        """``GET /system_stats``: ``{"system": {...}, "devices": [...]}``."""
        stats = expect(await self._json("GET", "/system_stats"), dict, "/system_stats")
        expect(stats.get("system"), dict, "/system_stats")
        return stats

    async def features(self) -> JSONObject:
        """``GET /features``: server feature flags (what SwarmUI's idle monitor polls)."""
        return expect(await self._json("GET", "/features"), dict, "/features")

    async def models(self, folder: str | None = None) -> list[str]:
        """``GET /models`` (folder names) or ``/models/<folder>`` (file names in it)."""
        path = "/models" if folder is None else f"/models/{urllib.parse.quote(folder)}"
        return expect(await self._json("GET", path), list, path)

    async def info_json(self, path: str) -> Any:
        """``GET <path>`` of a read-only route answering JSON (``/i18n``, ``/extensions``, ...)."""
        return await self._json("GET", path)

    # ----- the web frontend

    async def web_file(self, path: str) -> bytes:
        """``GET <path>`` of ComfyUI's web frontend (``/``, ``/assets/...``, already URL-quoted):
        the file's bytes (a missing file: ``ComfyRequestError`` with status 404)."""
        status, raw = await self._send("GET", path, self.max_file_bytes)
        self.check_status(status, raw)
        return raw

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
        body = prompt_body(prompt, client_id, prompt_id, extra_data, front)
        return prompt_answer(await self._json("POST", "/prompt", json=body))

    def start_prompt(
        self,
        prompt: Mapping[str, Any],
        client_id: str,
        prompt_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        front: bool = False,
    ) -> SentPrompt | None:
        """``POST /prompt`` written now, without yielding to the event loop, when a kept-alive
        connection is idle; its answer (as :meth:`queue_prompt`'s) is awaited through the returned
        :class:`SentPrompt`. None when the call cannot start so (then :meth:`queue_prompt`)."""
        if self._closed or self._fast is None:
            return None
        body = encode_json(prompt_body(prompt, client_id, prompt_id, extra_data, front))
        try:
            exchange = self._fast.start("POST", "/prompt", body, content_type="application/json")
        except (OSError, RuntimeError):  # the connection broke as it was written: queue_prompt reports it
            return None
        return None if exchange is None else SentPrompt(self, exchange)

    async def get_prompt_info(self) -> JSONObject:
        """``GET /prompt``: ``{"exec_info": {"queue_remaining": N}}`` (running + pending)."""
        return expect(await self._json("GET", "/prompt"), dict, "/prompt")

    async def get_queue(self) -> JSONObject:
        """``GET /queue``: ``{"queue_running": [...], "queue_pending": [...]}``."""
        return expect(await self._json("GET", "/queue"), dict, "/queue")

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
        return expect(await self._json("GET", path, params=params), dict, path)

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
        self.check_status(status, raw)
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
        return expect(answer, dict, "/upload/image")

    # ----- events

    def connect_events(self, client_id: str, *, feature_flags: Mapping[str, Any] | None = None) -> ComfyEvents:
        """The event websocket ``/ws?clientId=<client_id>``, to ``async with`` or ``await``.

        With ``feature_flags`` (e.g. ``{"supports_preview_metadata": True}``), they are sent as
        the first message, and ComfyUI answers with its own ``feature_flags`` event.
        """
        return ComfyEvents(
            self._events_url(client_id),
            client_id,
            headers=self.headers,
            timeout=self.timeout,
            max_size=self.max_file_bytes,
            feature_flags=feature_flags,
        )

    async def open_feed(
        self,
        client_id: str,
        on_frame: FrameCallback,
        *,
        feature_flags: Mapping[str, Any] | None = None,
        ping_interval: float = PING_INTERVAL,
    ) -> EventFeed:
        """The same websocket for a relay: each frame goes to ``on_frame`` as it arrives (see
        :mod:`~swarmkeeper.clients.comfyui.feed`); ``feature_flags`` as for :meth:`connect_events`."""
        feed = EventFeed(self._events_url(client_id), self.headers, self.max_file_bytes, on_frame,
                         ping_interval=ping_interval)
        await feed.open(self.timeout)
        if feature_flags is not None:
            feed.send_json({"type": "feature_flags", "data": dict(feature_flags)})
        return feed

    def _events_url(self, client_id: str) -> str:
        return f"{self.address.ws_url}/ws?clientId={urllib.parse.quote(client_id)}"


def prompt_body(prompt: Mapping[str, Any], client_id: str, prompt_id: str | None,
                extra_data: Mapping[str, Any] | None, front: bool) -> JSONObject:
    body: JSONObject = {"prompt": dict(prompt), "client_id": client_id}
    if prompt_id is not None:
        body["prompt_id"] = prompt_id
    if extra_data is not None:
        body["extra_data"] = dict(extra_data)
    if front:
        body["front"] = True
    return body


def prompt_answer(answer: Any) -> JSONObject:
    checked = expect(answer, dict, "/prompt")
    if not isinstance(checked.get("prompt_id"), str):
        raise ComfyProtocolError("The backend answered /prompt without a prompt_id - is this ComfyUI?")
    return checked


class SentPrompt:
    """A ``POST /prompt`` already written; :meth:`answer` reads what the backend said (once), under
    the client's deadline and error boundary; :meth:`abandon` when it will not be read."""

    def __init__(self, client: ComfyClient, exchange: Exchange) -> None:
        self.client = client
        self.exchange = exchange

    async def answer(self) -> JSONObject:
        limit = self.client.max_json_bytes
        with map_errors(self.client.timeout, limit):
            async with asyncio.timeout(self.client.timeout):
                status, raw = await self.exchange.answer(limit)
        self.client.check_status(status, raw)
        return prompt_answer(decode_json(raw, "/prompt"))

    def abandon(self) -> None:
        self.exchange.abandon()
