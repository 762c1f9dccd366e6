"""ComfyUI's event websocket: binary and text frames, and the socket that yields them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType
from typing import Any, Self

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedOK

from swarmkeeper.clients.comfyui.boundary import map_errors
from swarmkeeper.clients.errors import ComfyProtocolError, ComfyUnreachable

JSONObject = dict[str, Any]


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
