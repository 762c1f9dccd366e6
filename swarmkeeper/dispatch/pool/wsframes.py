"""The pool port's websockets: uvicorn's own, plus a way to write frames straight to the connection.

Every message a client of the pool gets would otherwise go through ASGI one at a time: Starlette's
send, the middleware's wrappers, uvicorn's ``send`` (an awaited event, websockets' framing) and a
socket write of its own. On the pool's port, :class:`PoolWebSocketProtocol` (uvicorn's websocket
protocol) puts a :class:`FrameWriter` into the connection's ASGI scope (``extensions``, under
:data:`RAW_FRAMES`, as ``{"writer": ...}``). The relay frames each message itself (a server's frames are not masked: a
header and the payload as it came) and the writer gathers the frames of one event-loop iteration
into one socket write, so a burst of a backend's events reaches the client in one write.

The handshake, pings, the close and everything the client sends stay uvicorn's. The port offers
no permessage-deflate, so frames are written as they are (the backends' events are small JSON; a
browser that asks for compression gets uncompressed messages, which the extension allows).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

#: The ASGI scope extension holding the connection's FrameWriter (``{"writer": FrameWriter}``).
RAW_FRAMES = "swarmkeeper.raw_frames"
TEXT, BINARY = 0x1, 0x2
#: Seconds a snapshot frame (``status``) alone may wait for other frames to share its write, or for
#: a newer snapshot to replace it: a page refreshes its queue on each, and with many backends and
#: clients they came in thousands a second, each its own socket write.
SNAPSHOT_DELAY = 0.025


def frame_head(opcode: int, size: int) -> bytes:
    """The header of one final, unmasked websocket frame (RFC 6455 §5.2), as a server sends it."""
    if size < 126:
        return bytes((0x80 | opcode, size))
    if size < 1 << 16:
        return bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")


def frame(opcode: int, payload: bytes) -> bytes:
    """One whole frame: its header and the payload."""
    return frame_head(opcode, len(payload)) + payload


class FrameWriter:
    """Whole frames to one client connection, written once per event-loop iteration.

    A snapshot (ComfyUI's ``status``) is the exception: one that would be the only thing to write
    waits up to :data:`SNAPSHOT_DELAY` for company (any other frame writes it at once, in its
    place, all in order); and a newer snapshot of the same ``turn`` (one event-loop iteration)
    replaces one not yet written (it moves to the end, so the frames before it stay before it).
    Snapshots of different turns are all written: a client sees every ``status`` a ComfyUI would
    send it, except those superseded within one iteration.
    """

    def __init__(self, connection: PoolWebSocketProtocol, *, snapshot_delay: float = SNAPSHOT_DELAY) -> None:
        self._connection = connection
        self._snapshot_delay = snapshot_delay
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        #: Where the last unwritten snapshot's header sits in ``_pending`` (its payload follows), or
        #: -1; and its turn.
        self._snapshot_at = -1
        self._snapshot_turn = -1
        self._soon: asyncio.Handle | None = None
        self._later: asyncio.TimerHandle | None = None

    @property
    def open(self) -> bool:
        connection = self._connection
        return not (connection.close_sent or connection.disconnected or connection.transport.is_closing())

    @property
    def backlog(self) -> int:
        """Bytes written and not yet taken by the client."""
        return self._pending_bytes + self._connection.transport.get_write_buffer_size()

    def text(self, text: str) -> None:
        self._add(TEXT, text.encode())

    def binary(self, data: bytes) -> None:
        self._add(BINARY, data)

    def snapshot(self, head: bytes, payload: bytes, turn: int, max_backlog: int) -> bool:
        """A text frame (``head`` from :func:`frame_head`) that a newer one of the same ``turn``
        replaces while neither is written; False (and nothing added) when the client is already
        ``max_backlog`` bytes behind."""
        pending, at = self._pending, self._snapshot_at
        if at >= 0 and self._snapshot_turn == turn:
            self._pending_bytes -= len(pending[at + 1])
            pending[at] = pending[at + 1] = b""
        elif self.backlog >= max_backlog:
            return False
        self._snapshot_at, self._snapshot_turn = len(pending), turn
        pending += (head, payload)
        self._pending_bytes += len(payload)
        if self._soon is None and self._later is None:
            self._later = self._connection.loop.call_later(self._snapshot_delay, self.flush)
        return True

    def _add(self, opcode: int, payload: bytes) -> None:
        if self._soon is None:
            self._soon = self._connection.loop.call_soon(self.flush)
        self._pending += (frame_head(opcode, len(payload)), payload)
        self._pending_bytes += len(payload)

    def flush(self) -> None:
        """Write what waits now (the loop calls it once per iteration that added frames), headers
        and payloads as they are, in one vectored write; frames for a connection that is closing
        are dropped."""
        pending, self._pending, self._pending_bytes, self._snapshot_at = self._pending, [], 0, -1
        for handle in (self._soon, self._later):
            if handle is not None:
                handle.cancel()
        self._soon = self._later = None
        if pending and self.open:
            self._connection.transport.writelines(pending)


class PoolWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol, with a FrameWriter in each accepted connection's scope."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][RAW_FRAMES] = {"writer": FrameWriter(self)}

