"""ComfyUI's event websocket for a relay: each frame handed to a callback the moment it arrives.

:class:`~swarmkeeper.clients.comfyui.ComfyEvents` suits a caller that awaits one event after
another. A relay that passes on every frame of a busy backend pays for that per frame: the frame
is queued, a reader task is woken and resumes, an async iterator steps. :class:`EventFeed` runs
websockets' sans-I/O protocol on an asyncio transport itself and calls ``on_frame`` inside
``data_received``: about a fifth less CPU per frame (0.77-0.79 in ``bench/event_feed.py``).
websockets still does all of the protocol (handshake, framing, limits, ping, close).

``on_frame`` gets each whole message as it came: ``str`` for text, ``bytes`` for binary. It runs
inside the transport's callback, so it must not block. An exception from it ends the feed: a
``ComfyError``'s message becomes the reason it ended; any other is the caller's bug, to log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Mapping
from typing import Any, cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from swarmkeeper.clients.comfyui.boundary import map_errors
from swarmkeeper.clients.errors import ComfyError, ComfyProtocolError, ComfyUnreachable

FrameCallback = Callable[[str | bytes], None]
#: Seconds between keepalive pings, and how long a pong may take (websockets' defaults): a backend
#: whose host vanished without closing the connection is noticed within about twice this.
PING_INTERVAL = 20.0


class EventFeed(asyncio.Protocol):
    """One open event websocket. ``ended`` resolves, once, with why it ended (a ``ComfyError``
    message); :meth:`aclose` closes it from this side."""

    def __init__(self, url: str, headers: Mapping[str, str], max_size: int, on_frame: FrameCallback, *,
                 ping_interval: float = PING_INTERVAL) -> None:
        self.uri = parse_uri(url)
        self.on_frame = on_frame
        self.ping_interval = ping_interval
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._protocol = ClientProtocol(self.uri, max_size=max_size)
        self._request = self._protocol.connect()
        for name, value in headers.items():
            self._request.headers[name] = value
        self._transport: asyncio.Transport | None = None
        #: The parts of a fragmented message so far, and its opcode.
        self._parts: list[bytes] = []
        self._opcode = Opcode.TEXT
        #: The next keepalive ping, or the deadline of the pong awaited.
        self._timer: asyncio.TimerHandle | None = None

    # --- opening and closing (the caller's side) ---

    async def open(self, timeout: float) -> None:
        """Connect and finish the handshake within ``timeout`` seconds (``ComfyError`` if not)."""
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.uri.secure else None
        with map_errors(timeout):
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: self, self.uri.host, self.uri.port, ssl=context)
                try:
                    await asyncio.shield(self._opened)
                except BaseException:
                    self._abort()
                    raise
        self._timer = loop.call_later(self.ping_interval, self._ping)

    def send_json(self, message: Mapping[str, Any]) -> None:
        """One JSON text message to the server (dropped when the feed has ended)."""
        if not self.ended.done():
            self._protocol.send_text(json.dumps(message).encode())
            self._flush()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close the socket and wait (up to ``timeout``) for the server to close its side; never
        raises."""
        if self._transport is None:
            return
        if not self.ended.done():
            with contextlib.suppress(Exception):
                self._protocol.send_close(1000)
                self._flush()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self.ended)
        self._abort()

    # --- the transport's callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self._protocol.send_request(self._request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._protocol.receive_data(data)
        try:
            for event in self._protocol.events_received():
                if isinstance(event, Response):
                    self._handshake_done()
                elif isinstance(event, Frame):
                    self._frame(event)
        except ComfyError as error:  # on_frame could not read the frame
            self._fail(error)
            return
        except UnicodeDecodeError:
            self._fail(ComfyProtocolError("The backend sent a text message that is not UTF-8."))
            return
        except Exception as error:  # a bug in on_frame: logged by whoever set it, ends the feed here
            self._fail(ComfyError(f"The event relay failed ({type(error).__name__})."))
            return
        self._flush()

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
        if not self._opened.done():
            self._opened.set_exception(self._protocol.handshake_exc or exc or
                                       ComfyUnreachable("The backend closed the connection."))
            self._opened.exception()  # retrieved here when nobody waits any more
        self._end(self._why_closed())

    # --- inside ---

    def _why_closed(self) -> ComfyError:
        protocol = self._protocol
        if protocol.close_sent is not None and protocol.close_sent.code == 1009:  # we refused an oversized message
            return ComfyProtocolError("A websocket message from the backend was larger than allowed.")
        if protocol.parser_exc is not None and not isinstance(protocol.parser_exc, EOFError):  # EOF: lost
            return ComfyProtocolError(f"The backend broke the websocket protocol ({protocol.parser_exc}).")
        if protocol.close_rcvd is not None or protocol.close_sent is not None:
            return ComfyUnreachable("The backend closed its event connection.")
        return ComfyUnreachable("The websocket connection to the backend was lost.")

    def _handshake_done(self) -> None:
        if self._opened.done():
            return
        if self._protocol.handshake_exc is None:
            self._opened.set_result(None)
        else:
            self._opened.set_exception(self._protocol.handshake_exc)

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            if frame.fin:
                self._deliver(frame.opcode, bytes(frame.data))
            else:
                self._opcode, self._parts = frame.opcode, [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            self._parts.append(bytes(frame.data))
            if frame.fin:
                data, self._parts = b"".join(self._parts), []
                self._deliver(self._opcode, data)
        elif frame.opcode is Opcode.PONG and self._timer is not None:
            self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(self.ping_interval, self._ping)

    def _ping(self) -> None:
        """Keepalive (websockets answers the server's pings itself): a ping, and a deadline for its pong."""
        if self._transport is None:
            return
        self._protocol.send_ping(b"")
        self._flush()
        self._timer = asyncio.get_running_loop().call_later(self.ping_interval, self._no_pong)

    def _no_pong(self) -> None:
        self._fail(ComfyUnreachable(f"The backend stopped answering on its event connection (no pong in "
                                    f"{self.ping_interval:g} s)."))

    def _deliver(self, opcode: Opcode, data: bytes) -> None:
        self.on_frame(data.decode() if opcode is Opcode.TEXT else bytes(data))

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for data in self._protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self._protocol.close_expected():
            transport.close()

    def _end(self, error: ComfyError) -> None:
        if not self.ended.done():
            self.ended.set_result(error.message)

    def _fail(self, error: ComfyError) -> None:
        self._end(error)
        self._abort()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
