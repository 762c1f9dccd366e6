"""``POST /API/<Route>`` and its websocket twin: HTTP checks, sessions, dispatch, error shapes.

The checks run in SwarmUI's order (reference §1), top to bottom in :func:`dispatch`:
method → content type → content length → JSON object → session → route → permission →
parameters → handler. Framework refusals are TransportErrors (HTTP 400, 401 for a bad session);
a route's own refusal is an APIError (HTTP 200 ``{"error"}``); anything else is logged with its
traceback and answered as ``internal_error``, never as a traceback or a bare 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from swarmkeeper import dotnet
from swarmkeeper.api.bodies import BodyTooLarge, body_cap, read_capped
from swarmkeeper.api.gzipped import accepts_gzip
from swarmkeeper.api.permissions import PUBLIC
from swarmkeeper.api.routes import APICall, Route
from swarmkeeper.api.users import ANONYMOUS, User
from swarmkeeper.exceptions import APIError, InvalidSession, TransportError
from swarmkeeper.types import GzipJSON, JSONObject, RawJSON

if TYPE_CHECKING:
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.api")

WEBSOCKET_TIMEOUT = 60.0
INTERNAL_ERROR = TransportError("internal_error", "An internal error occurred")
_LONG_DIGITS = re.compile(rb"\d{19}")


class SwarmJSONResponse(JSONResponse):
    """Compact JSON (orjson), never cached; an answer already serialised is sent as it is, and one
    that carries its gzip is sent as that to a caller that accepts gzip (``gzip``)."""

    def __init__(self, content: Any, status_code: int = 200, *, close: bool = False, gzip: bool = False) -> None:
        headers = {"Cache-Control": "no-store", **({"Connection": "close"} if close else {})}
        if isinstance(content, GzipJSON):
            headers["Vary"] = "Accept-Encoding"
            if gzip and content.gzipped is not None:
                headers["Content-Encoding"] = "gzip"
                content = RawJSON(content.gzipped)
        super().__init__(content, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        if isinstance(content, RawJSON):
            return content  # as it is: a copy of a large answer costs more than writing it
        return dumps(content)


def dumps(content: Any) -> bytes:
    """Compact JSON; orjson, unless the answer holds an integer past 64 bits (a client can send one,
    and some routes echo what was sent), which only the standard library writes, or a lone
    surrogate, which only JSON's ``\\ud800`` escape can carry (so no answer is ever a bare 500)."""
    try:
        return orjson.dumps(content)
    except TypeError:
        text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(content, separators=(",", ":")).encode()


def error_body(error: TransportError) -> JSONObject:
    return {"error_id": error.error_id, "error": error.message}


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(data: bytes | bytearray | str) -> JSONObject:
    """The request body as a JSON object, or a TransportError saying what is wrong with it. orjson
    reads what it can (strict UTF-8 JSON); the standard library reads the rest, says what is wrong,
    and reads any long run of digits (orjson would turn an integer past 64 bits into a float)."""
    if isinstance(data, str) or _LONG_DIGITS.search(data):
        body = _parse_slowly(data)
    else:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = _parse_slowly(data)
    if body is None:
        raise TransportError("basic_api", "null input")
    if not isinstance(body, dict):
        raise TransportError("internal_error", "The request body must be a JSON object.")
    return body


def _parse_slowly(data: bytes | bytearray | str) -> Any:
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise TransportError("internal_error", f"The request body is not valid JSON: {error}") from None


async def read_http_body(services: Services, request: Request) -> bytearray:
    """The body, after SwarmUI's checks on its headers and ours on its size (:mod:`swarmkeeper.api.bodies`:
    the cap is chosen before a byte of it is read). A refusal here leaves some of the body unread."""
    if not _is_json_type(request.headers.get("content-type", "")):
        raise TransportError("basic_api", "Wrong content type")
    max_bytes = services.settings.network.MaxNetworkRequestMegabytes * 1024 * 1024
    length = dotnet.parse_int(request.headers.get("content-length", ""), 64)
    if length is None or not 0 < length < min(max_bytes, 2**31):
        raise TransportError("basic_api", "bad content length")
    cap = await body_cap(services, request, length, max_bytes)
    if length > cap:
        raise BodyTooLarge(cap)
    return await read_capped(request, cap, services.config.wire.body_timeout)


async def resolve_user(services: Services, route: Route | None, body: JSONObject,
                       connection: HTTPConnection) -> tuple[User, Any]:
    """The caller and its session. The session is checked before the route is known to exist,
    so an unknown route with a bad session answers ``invalid_session_id`` (as SwarmUI does).
    Without a session id, a credential of the request itself (an API key) may stand in for one."""
    if route is not None and not route.needs_session:
        return (await services.users.user_for_request(connection)) or ANONYMOUS, None
    raw_id = body["session_id"] if "session_id" in body else connection.headers.get("x-session-id")
    if raw_id is None:
        bearer = await services.users.user_for_bearer(connection)
        if bearer is None:
            raise TransportError("basic_api", "missing session id")
        return bearer, None
    session = services.sessions.get(dotnet.to_text(raw_id))
    if session is None:
        raise InvalidSession()
    user = await services.users.user_for_session(session, connection)
    if user is None:
        raise InvalidSession()
    return user, session


async def dispatch(services: Services, name: str, body: JSONObject, connection: HTTPConnection, *,
                   websocket: WebSocket | None = None) -> JSONObject | RawJSON:
    """Run one API call after the transport checks; raises TransportError or APIError."""
    route = services.routes.get(name) if "/" not in name else None
    user, session = await resolve_user(services, route, body, connection)
    if route is None:
        raise TransportError("bad_route", "Unknown API route")
    if route.websocket and websocket is None:
        raise TransportError("bad_request_method", "API route needs websocket, request is HTTP")
    if websocket is not None and not route.websocket:
        raise TransportError("bad_request_method", "API route needs HTTP, request is websocket")
    if route.flag is not PUBLIC and not user.may(route.flag):
        raise TransportError("bad_permissions", "You lack permissions for this route.")
    raw = {key: value for key, value in body.items() if key != "session_id"}
    arguments = route.bind(body, raw)
    if route.user_update and session is not None:
        await services.sessions.touch(session)
    call = APICall(services, user, session, raw, connection, websocket.send_json if websocket else None)
    result = await route.handler(call, **arguments)
    if result is None:
        raise TransportError("no_result", "API call did not return any output")
    return result


async def api_http(request: Request) -> Response:
    services: Services = request.app.state.services
    name = request.path_params["route"]
    if request.method != "POST":
        log.error("A %s request was sent to API route '%s'; API routes only take POST", request.method, name)
        return RedirectResponse("/Error/NoGetAPI", status_code=302)
    read = False  # a refusal before the whole body is read ends the connection (the rest stays unread)
    try:
        raw = await read_http_body(services, request)
        read = True
        result = await dispatch(services, name, parse_body(raw), request)
        return SwarmJSONResponse(result, gzip=accepts_gzip(request.headers.get("accept-encoding", "")))
    except APIError as error:
        log.info("API call %s refused: %s", name, error.message)
        return SwarmJSONResponse({"error": error.message})
    except TransportError as error:
        return SwarmJSONResponse(error_body(error), status_code=error.status_code, close=not read)
    except Exception:
        log.exception("Internal error in API call %s", name)
        return SwarmJSONResponse(error_body(INTERNAL_ERROR), status_code=400, close=not read)


async def api_websocket(websocket: WebSocket) -> None:
    """A websocket call: one JSON message in, zero or more JSON messages out, then close."""
    services: Services = websocket.app.state.services
    name = websocket.path_params["route"]
    await websocket.accept()
    try:
        async with asyncio.timeout(WEBSOCKET_TIMEOUT):
            message = await websocket.receive_text()
        result = await dispatch(services, name, parse_body(message), websocket, websocket=websocket)
        await websocket.send_text((bytes(result) if isinstance(result, RawJSON) else dumps(result)).decode())
    except (WebSocketDisconnect, TimeoutError):
        return
    except APIError as error:
        await websocket.send_json({"error": error.message})
    except TransportError as error:
        await websocket.send_json(_ws_error(error))
    except Exception:
        log.exception("Internal error in websocket API call %s", name)
        await websocket.send_json(error_body(INTERNAL_ERROR))
    await websocket.close()


def _ws_error(error: TransportError) -> JSONObject:
    """Over a websocket SwarmUI sends some errors with ``error`` first, and a trailing period on
    the unknown-route text."""
    if error.error_id == "bad_route":
        return {"error": "Unknown API route.", "error_id": "bad_route"}
    if error.error_id == "bad_permissions":
        return {"error": error.message, "error_id": error.error_id}
    return error_body(error)


async def no_get_api(request: Request) -> Response:
    return HTMLResponse(
        "<!doctype html><title>API routes need POST</title><h1>API routes need POST</h1>"
        "<p>swarmkeeper's API routes (<code>/API/&lt;Route&gt;</code>) only answer <code>POST</code> requests "
        "with a JSON body. See the API documentation under <code>docs/</code>.</p>")
