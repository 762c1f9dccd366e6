"""The pool's client websockets (``/ws?clientId=``) and what is sent on them.

On the pool's own port a client's messages are framed here and written straight to its
connection, the messages of one event-loop iteration in one write (``wsframes.py``); elsewhere
(under ``/ComfyBackendDirect/`` on the main port) each client socket has its own outgoing queue and
writer task. Either way a slow client never holds up the events of others. Messages are
serialised as ComfyUI serialises them (``json.dumps``); a backend's event is passed on as the text
it came in (ComfyUI's own serialisation of it).

Preview frames: the pool asks every backend for ComfyUI's preview metadata frames (type 4, which
name their prompt). A client that did not ask for them gets type 1 frames, in the order ComfyUI
sends those: the ``progress`` message first, then the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from swarmkeeper.clients.comfyui import BinaryEvent, BinaryEventType
from swarmkeeper.dispatch.pool.wsframes import RAW_FRAMES, TEXT, FrameWriter, frame_head

log = logging.getLogger("swarmkeeper.dispatch.pool")
JSONObject = dict[str, Any]
#: Messages a client may fall behind by before it is dropped (it can reconnect).
MAX_BACKLOG = 10_000
#: Bytes a client written to straight (FrameWriter) may fall behind by before it is dropped (it can
#: reconnect): the frames not yet taken by its socket, in the pool's memory.
MAX_BACKLOG_BYTES = 32 * 1024 * 1024
#: ``json.dumps`` of a ``status`` message, written out: three go to every client for every prompt.
STATUS_TEXT = '{{"type": "status", "data": {{"status": {{"exec_info": {{"queue_remaining": {}}}}}}}}}'
IMAGE_FORMATS = {"image/jpeg": 1, "image/png": 2}


def preview_without_metadata(event: BinaryEvent) -> bytes | None:
    """A type-4 preview frame as the type-1 frame ComfyUI sends to clients without metadata."""
    image, kind = event.image, event.image_type
    if image is None or kind not in IMAGE_FORMATS:
        return None
    return int(BinaryEventType.PREVIEW_IMAGE).to_bytes(4, "big") + IMAGE_FORMATS[kind].to_bytes(4, "big") + image


@dataclass(eq=False)
class ClientSocket:
    sid: str
    socket: WebSocket
    preview_metadata: bool = False
    #: Writes straight to the connection (the pool's port), or None: messages go through ``outbox``.
    frames: FrameWriter | None = None
    #: Bytes it may fall behind by, with ``frames``, before it is dropped.
    max_backlog_bytes: int = MAX_BACKLOG_BYTES
    #: Messages for the writer task (without ``frames``); None ends the connection.
    outbox: asyncio.Queue[str | bytes | None] = field(default_factory=asyncio.Queue)
    #: A converted preview frame waiting for the ``progress`` message it follows.
    held: bytes | None = None
    closed: bool = False

    def put(self, message: str | bytes) -> None:
        if self.closed:
            return
        if self.frames is not None:
            self._write(self.frames, message)
            return
        if self.outbox.qsize() >= MAX_BACKLOG:
            log.warning("ComfyUI client %s fell %s messages behind; dropping it", self.sid, MAX_BACKLOG)
            self.close()
            return
        self.outbox.put_nowait(message)

    def _write(self, frames: FrameWriter, message: str | bytes) -> None:
        if frames.backlog >= self.max_backlog_bytes:
            log.warning("ComfyUI client %s fell %s bytes behind; dropping it", self.sid, self.max_backlog_bytes)
            self.close()
        elif isinstance(message, bytes):
            frames.binary(message)
        else:
            frames.text(message)

    def close(self) -> None:
        """End the connection (its pending frames are written first)."""
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(None)

    def text(self, text: str, kind: str) -> None:
        held, self.held = self.held, None
        if held is not None and kind != "progress":
            self.put(held)
            held = None
        self.put(text)
        if held is not None:
            self.put(held)

    def snapshot(self, text: str, head: bytes, payload: bytes, turn: int) -> None:
        """A ``status`` (``text``; as a frame's ``head`` and ``payload``): written straight, it
        replaces one of the same turn not yet written (FrameWriter.snapshot)."""
        frames = self.frames
        if frames is None or self.closed or self.held is not None:
            self.text(text, "status")
        elif not frames.snapshot(head, payload, turn, self.max_backlog_bytes):
            log.warning("ComfyUI client %s fell %s bytes behind; dropping it", self.sid, self.max_backlog_bytes)
            self.close()

    def binary(self, event: BinaryEvent, frame: bytes) -> None:
        if self.preview_metadata or event.event_type != BinaryEventType.PREVIEW_IMAGE_WITH_METADATA:
            self.put(frame)
            return
        converted = preview_without_metadata(event)
        if converted is not None:
            if self.held is not None:
                self.put(self.held)
            self.held = converted

    def flush(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            self.put(held)


class Relay:
    """Client sockets by sid (ComfyUI's clientId); a reconnect with the same id replaces the old."""

    def __init__(self, server_features: JSONObject, *, max_backlog_bytes: int = MAX_BACKLOG_BYTES) -> None:
        self.clients: dict[str, ClientSocket] = {}
        self.server_features = server_features
        self.max_backlog_bytes = max_backlog_bytes
        #: Counts event-loop iterations that sent a ``status``: within one, the newest replaces the
        #: others not yet written.
        self._turn = 0
        self._turning: asyncio.Handle | None = None

    def targets(self, sid: str | None) -> Iterable[ClientSocket]:
        if sid is None:
            return list(self.clients.values())
        client = self.clients.get(sid)
        return [client] if client is not None else []

    def send(self, sid: str | None, kind: str, data: Any, text: str | None = None) -> None:
        """One JSON message to a client (every client when ``sid`` is None); ``text`` is the message
        already serialised, when it is."""
        if text is None:
            text = json.dumps({"type": kind, "data": data})
        if sid is not None:  # one client: the most frequent case, without a list
            client = self.clients.get(sid)
            if client is not None:
                client.text(text, kind)
            return
        for client in list(self.clients.values()):
            client.text(text, kind)

    def send_binary(self, sid: str | None, event: BinaryEvent, frame: bytes) -> None:
        for client in self.targets(sid):
            client.binary(event, frame)

    def flush(self, sid: str | None) -> None:
        for client in self.targets(sid):
            client.flush()

    def status(self, remaining: int) -> None:
        """The pool's queue figure to every client (framed once for all)."""
        if not self.clients:
            return
        text = STATUS_TEXT.format(int(remaining))
        payload = text.encode()
        head = frame_head(TEXT, len(payload))
        if self._turning is None:
            self._turning = asyncio.get_running_loop().call_soon(self._next_turn)
        for client in list(self.clients.values()):
            client.snapshot(text, head, payload, self._turn)

    def _next_turn(self) -> None:
        self._turn += 1
        self._turning = None

    # --- one connection ---

    async def serve(self, websocket: WebSocket, remaining: int, executing: JSONObject | None) -> None:
        """Run one client connection to its end: greeting, then its messages and ours."""
        await websocket.accept()
        sid = websocket.query_params.get("clientId") or uuid.uuid4().hex
        frames = (websocket.scope.get("extensions") or {}).get(RAW_FRAMES, {}).get("writer")
        client = ClientSocket(sid, websocket, frames=frames if isinstance(frames, FrameWriter) else None,
                              max_backlog_bytes=self.max_backlog_bytes)
        old = self.clients.get(sid)
        self.clients[sid] = client
        if old is not None:
            old.close()
        greeting = {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": sid}
        client.put(json.dumps({"type": "status", "data": greeting}))
        if executing is not None:
            client.put(json.dumps({"type": "executing", "data": executing}))
        reader = asyncio.create_task(self._read(client), name=f"comfy-client-{sid}")
        try:
            await self._write(client)
        finally:
            client.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if self.clients.get(sid) is client:
                del self.clients[sid]
            if client.frames is not None:
                client.frames.flush()
            with contextlib.suppress(Exception):
                await websocket.close()

    async def _write(self, client: ClientSocket) -> None:
        """Send the outbox's messages until the connection ends (with ``frames``, the outbox
        holds only the end)."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while (message := await client.outbox.get()) is not None:
                if isinstance(message, bytes):
                    await client.socket.send_bytes(message)
                else:
                    await client.socket.send_text(message)

    async def _read(self, client: ClientSocket) -> None:
        """What a client sends: ComfyUI acts only on ``feature_flags``; a disconnect ends the writer."""
        try:
            while True:
                received = await client.socket.receive()
                if received["type"] == "websocket.disconnect":
                    return
                self._on_message(client, received.get("text"))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            client.close()

    def _on_message(self, client: ClientSocket, text: str | None) -> None:
        try:
            message = json.loads(text or "")
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "feature_flags":
            data = message.get("data")
            client.preview_metadata = isinstance(data, dict) and bool(data.get("supports_preview_metadata"))
            client.put(json.dumps({"type": "feature_flags", "data": self.server_features}))
