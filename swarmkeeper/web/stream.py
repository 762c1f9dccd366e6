"""The push stream of backend changes: Server-Sent Events at ``GET /events/backends?session_id=...``.

The web page opens it once and re-reads ``ListBackends`` when told something changed, instead of
polling every 3 s as SwarmUI's page does. What goes down the stream::

    retry: 1000                      reconnect after 1 s if the connection drops
    event: ready                     subscribed: read the list now, nothing will be missed
    event: backend                   one change (data: {"kind", "backend_id", "status", "reason"})
    event: resync                    this stream fell behind and lost events: re-read everything
    : ping                           a heartbeat comment, every ``heartbeat`` seconds
    event: farm                      with ``&farm=1``: the farm view's snapshot (api/farm_view.py),
                                     at once and then every ``farm_every`` seconds

The session and the ``view_backends_list`` permission are checked as an API call checks them,
and again while the stream is open: at once when rights may have shrunk anywhere in the server
(``sessions.access``: a logout, a role change, a removed user, a revoked key), and every
``recheck_every`` seconds for changes made from outside (the ``swarmkeeper users`` command). A
caller who lost the permission gets nothing more: the stream ends. A stream ends, and its
subscription with it, when the client leaves, the session ends, or the server starts to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from swarmkeeper.api.access import AccessChanges
from swarmkeeper.api.farm_view import farm_snapshot
from swarmkeeper.api.permissions import VIEW_BACKENDS_LIST
from swarmkeeper.api.transport import SwarmJSONResponse, error_body
from swarmkeeper.api.users import User
from swarmkeeper.events import BackendEvent, Subscription
from swarmkeeper.exceptions import InvalidSession, TransportError
from swarmkeeper.types import JSONObject

if TYPE_CHECKING:
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.web")

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # tell a reverse proxy not to buffer the stream
]


@dataclass(frozen=True)
class StreamPolicy:
    #: Seconds between heartbeat comments (proxies drop silent connections).
    heartbeat: float = 15.0
    #: How long the browser waits before reconnecting, in milliseconds.
    retry_ms: int = 1000
    #: Seconds an idle stream waits before checking its session and the server's exit flag.
    check_every: float = 0.5
    #: Seconds between checks of the caller's rights when nothing in this server changed them.
    recheck_every: float = 1.0
    #: Seconds between two farm snapshots, on streams opened with ``farm=1``.
    farm_every: float = 1.0


def sse_message(event: str, data: JSONObject) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def event_message(event: BackendEvent) -> str:
    return sse_message("backend", {"kind": str(event.kind), "backend_id": event.backend_id,
                                   "status": event.status, "reason": event.reason})


async def authorize(services: Services, session_id: str | None, connection: HTTPConnection) -> User:
    """The stream's user, checked as transport.py checks an API call; TransportError if not."""
    if not session_id:
        raise TransportError("basic_api", "missing session id")
    session = services.sessions.get(session_id)
    user = None if session is None else await services.users.user_for_session(session, connection)
    if user is None:
        raise InvalidSession()
    if not user.may(VIEW_BACKENDS_LIST):
        raise TransportError("bad_permissions", "You lack permissions for this route.")
    return user


class EventStream:
    """One open stream: an ASGI response that forwards one subscription's events."""

    def __init__(self, services: Services, request: Request, session_id: str, policy: StreamPolicy,
                 exiting: Callable[[], bool], farm: Callable[[], JSONObject] | None = None) -> None:
        self.services = services
        self.farm = farm
        self.request = request
        self.session_id = session_id
        self.policy = policy
        self.exiting = exiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        with self.services.events.subscribe() as subscription:
            pump = asyncio.create_task(self._pump(subscription, send))
            listen = asyncio.create_task(_until_disconnect(receive))
            try:
                await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _cancel(pump, listen)
        if listen.cancelled():  # the stream ended while the client is still there: end the body
            await _send_quietly(send, {"type": "http.response.body", "body": b"", "more_body": False})
        _log_failure(pump)

    async def _pump(self, subscription: Subscription, send: Send) -> None:
        await _write(send, f"retry: {self.policy.retry_ms}\n" + sse_message("ready", {}))
        lost, last_beat, last_check, last_farm = 0, time.monotonic(), time.monotonic(), -math.inf
        while self._session_alive() and not self.exiting():
            if self.farm is not None and time.monotonic() - last_farm >= self.policy.farm_every:
                last_farm = time.monotonic()
                await _write(send, sse_message("farm", self.farm()))
            events, changed = await _next_events(subscription, self.services.sessions.access,
                                                 min(self.policy.check_every, self.policy.farm_every))
            if changed or time.monotonic() - last_check >= self.policy.recheck_every:
                last_check = time.monotonic()
                if not await self._still_permitted():
                    return  # nothing more for a caller who lost the right to see it, not even queued events
            if subscription.lost != lost:
                lost = subscription.lost
                await _write(send, sse_message("resync", {"lost": lost}))
            if events:
                await _write(send, "".join(event_message(event) for event in events))
            if time.monotonic() - last_beat >= self.policy.heartbeat:
                last_beat = time.monotonic()
                await _write(send, ": ping\n\n")

    def _session_alive(self) -> bool:
        return self.services.sessions.get(self.session_id) is not None

    async def _still_permitted(self) -> bool:
        try:
            await authorize(self.services, self.session_id, self.request)
        except TransportError:
            return False
        return True


async def _next_events(subscription: Subscription, access: AccessChanges,
                       wait: float) -> tuple[list[BackendEvent], bool]:
    """The next event and any queued behind it (none after ``wait`` seconds), and whether rights
    changed meanwhile (which ends the wait at once)."""
    getting = asyncio.ensure_future(subscription.get())
    changing = asyncio.ensure_future(access.wait())
    try:
        await asyncio.wait({getting, changing}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel(getting, changing)  # a cancelled get takes nothing off the queue
    events = [getting.result()] if getting.done() and not getting.cancelled() else []
    if events:
        while (queued := subscription.get_nowait()) is not None:
            events.append(queued)
    return events, changing.done() and not changing.cancelled()


def _log_failure(pump: asyncio.Task[None]) -> None:
    error = None if pump.cancelled() else pump.exception()
    if error is not None and not isinstance(error, OSError):  # OSError: the client went away
        log.error("The backend event stream failed", exc_info=error)


async def _until_disconnect(receive: Receive) -> None:
    message: Message = {}
    while message.get("type") != "http.disconnect":
        message = await receive()


async def _write(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode(), "more_body": True})


async def _send_quietly(send: Send, message: Message) -> None:
    with contextlib.suppress(OSError):  # the client left in the meantime
        await send(message)


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stream_endpoint(policy: StreamPolicy) -> Callable[[Request], Awaitable[Response | EventStream]]:
    """The ``/events/backends`` handler. ``app.state.exiting`` (set by whoever runs uvicorn)
    tells open streams the server is stopping, so they do not hold up its shutdown."""

    async def backend_events(request: Request) -> Response | EventStream:
        services: Services = request.app.state.services
        session_id = request.query_params.get("session_id")
        try:
            await authorize(services, session_id, request)
        except TransportError as error:
            return SwarmJSONResponse(error_body(error), status_code=error.status_code)
        exiting: Callable[[], bool] = getattr(request.app.state, "exiting", lambda: False)
        farm = (functools.partial(farm_snapshot, services.registry, services.metrics.farm)
                if request.query_params.get("farm") == "1" else None)
        return EventStream(services, request, str(session_id), policy, exiting, farm)

    return backend_events
