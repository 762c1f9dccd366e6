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

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

#: The ASGI scope extension holding the connection's FrameWriter (``{"writer": FrameWriter}``).
RAW_FRAMES = "swarmkeeper.raw_frames"
TEXT, BINARY = 0x1, 0x2


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
    """Whole frames to one client connection, written once per event-loop iteration."""

    def __init__(self, connection: PoolWebSocketProtocol) -> None:
        self._connection = connection
        self._pending: list[bytes] = []
        self._pending_bytes = 0

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

    def _add(self, opcode: int, payload: bytes) -> None:
        if not self._pending:
            self._connection.loop.call_soon(self.flush)
        self._pending += (frame_head(opcode, len(payload)), payload)
        self._pending_bytes += len(payload)

    def flush(self) -> None:
        """Write what waits now (the loop calls it once per iteration that added frames), headers
        and payloads as they are, in one vectored write; frames for a connection that is closing
        are dropped."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if pending and self.open:
            self._connection.transport.writelines(pending)


class PoolWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol, with a FrameWriter in each accepted connection's scope."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][RAW_FRAMES] = {"writer": FrameWriter(self)}

