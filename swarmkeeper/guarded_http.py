"""uvicorn's HTTP protocol (httptools) with two guards below HTTP, which uvicorn lacks:

- a header deadline: a request's headers must be complete within ``header_timeout`` of the
  connection (first request) or of the request's first byte; a late one is answered 408 and closed
  (a connection that sent nothing is just closed), so half-sent requests cannot hold descriptors for
  ever;
- connection caps: a connection past ``max_connections``, or past ``max_connections_per_address``
  from its client's address, is answered 503 at once (before it sends anything) and closed, so the
  process never runs out of descriptors, refuses rather than stalls, and one address cannot take
  every connection. (A websocket leaves the per-address count once upgraded; it still counts in
  the total.)

Both answers use SwarmUI's error shape. A connection closed while the client is still sending (a
refusal above, or an answer given before a request's body was read, such as a body too large) is
closed gracefully: our side is shut first and what the client still sends is dropped (up to
``LINGER_SECONDS`` and ``LINGER_BYTES``), so the client reads the answer instead of a reset. A body
whose unread rest is larger than that would end in a reset anyway: its connection is closed at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from swarmkeeper.limits import LINGERING_PER_PORT, WireLimits, trusted_address

#: How long, and for how many bytes, a connection closed while the client is still sending is kept
#: open for the client to read its answer (a client sending more gets a reset).
LINGER_SECONDS = 2.0
LINGER_BYTES = 8 * 1024 * 1024


def plain_answer(status: int, error_id: str, message: str) -> bytes:
    body = orjson.dumps({"error_id": error_id, "error": message})
    head = (b"content-type: application/json\r\ncache-control: no-store\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
    return STATUS_LINE[status] + head + body


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class PortCounts:
    """One port's open connections per client address, and its refused connections still lingering."""

    def __init__(self, limits: WireLimits) -> None:
        self.cap = limits.max_connections_per_address
        self.exempt = limits.forwarded_allow_ips
        self.open: dict[str, int] = {}
        self.lingering = 0

    def enter(self, host: str) -> bool:
        """Count one more from ``host``; False (not counted) when it is over the cap."""
        if not self.cap or trusted_address(host, self.exempt):
            return True
        if self.open.get(host, 0) >= self.cap:
            return False
        self.open[host] = self.open.get(host, 0) + 1
        return True

    def leave(self, host: str) -> None:
        left = self.open.get(host, 0) - 1
        if left > 0:
            self.open[host] = left
        else:
            self.open.pop(host, None)


class GuardedProtocol(HttpToolsProtocol):
    limits: ClassVar[WireLimits]
    counts: ClassVar[PortCounts]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._dropped = 0
        self._body_left: int | None = None
        self._counted: str | None = None  # the address this connection counts against
        self._lingering = False  # refused at once: out of the caps, in counts.lingering

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._turn_away("The server has too many open connections; try again shortly.")
            return
        host = self.client[0] if self.client else ""
        if not self.counts.enter(host):
            self._turn_away(f"Too many open connections from {host}; close some, or try again shortly.")
            return
        self._counted = host
        self._arm()

    def _turn_away(self, message: str) -> None:
        """Refuse a new connection. It leaves the caps' count at once (it must not keep others out
        while it lingers); at most ``LINGERING_PER_PORT`` linger per port, the rest are closed at once."""
        self.connections.discard(self)
        answer = plain_answer(503, "too_many_connections", message)
        if self.counts.lingering >= LINGERING_PER_PORT:
            self.transport.write(answer)
            self.transport.close()
            return
        self.counts.lingering += 1
        self._lingering = True
        self._refuse(answer)

    def handle_websocket_upgrade(self) -> None:
        self._uncount()
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)
            return
        self._dropped += len(data)
        if self._dropped > LINGER_BYTES:
            self.transport.close()

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._body_left = None
        self._arm()

    def on_body(self, body: bytes) -> None:
        if self._body_left is not None:
            self._body_left -= len(body)
        super().on_body(body)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._body_left = declared_length(self.headers)
        super().on_headers_complete()
        if self.cycle is not None:  # its task has not run yet
            self.cycle.transport = CycleTransport(self, self.cycle)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        """An answer given while more than ``LINGER_BYTES`` of its request's body is still to come
        (a refusal by any route or middleware): close rather than read and drop it all."""
        if self.cycle is not None and self.cycle.more_body and (self._body_left or 0) > LINGER_BYTES:
            self.transport.close()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._uncount()
        super().connection_lost(exc)

    def _uncount(self) -> None:
        if self._counted is not None:
            self.counts.leave(self._counted)
            self._counted = None
        if self._lingering:
            self.counts.lingering -= 1
            self._lingering = False

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.scope is None:  # not a byte sent: closed without an answer (a client may have meant to reuse it)
            self.transport.close()
            return
        self._refuse(plain_answer(408, "request_timeout", f"The request's headers did not arrive within "
                                                          f"{self.limits.header_timeout:g} s."))

    def _refuse(self, answer: bytes) -> None:
        self._unset_keepalive_if_required()
        self.transport.write(answer)
        self.close_softly(still_sending=True)

    def close_softly(self, *, still_sending: bool) -> None:
        """Close; if the client may still be sending, shut our side, drop whatever else comes, and
        close when the client does (or after ``LINGER_SECONDS``)."""
        if self._refused or self.transport.is_closing():
            return
        hopeless = self._body_left is not None and self._body_left > LINGER_BYTES  # it would end in a reset
        if not still_sending or hopeless or not self.transport.can_write_eof():
            self.transport.close()
            return
        self._refused = True
        self.transport.write_eof()
        self.transport.resume_reading()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class CycleTransport:
    """The transport as one request's cycle sees it: its ``close`` is the protocol's graceful one."""

    def __init__(self, protocol: GuardedProtocol, cycle: RequestResponseCycle) -> None:
        self.protocol = protocol
        self.cycle = cycle

    def write(self, data: bytes) -> None:
        self.protocol.transport.write(data)

    def is_closing(self) -> bool:
        return self.protocol.transport.is_closing()

    def close(self) -> None:
        self.protocol.close_softly(still_sending=self.cycle.more_body)


def guarded_protocol(limits: WireLimits) -> type[GuardedProtocol]:
    """A protocol class bound to these limits and to one port's address counts (uvicorn builds
    protocols from a class)."""
    return type("SwarmkeeperHTTPProtocol", (GuardedProtocol,), {"limits": limits, "counts": PortCounts(limits)})
