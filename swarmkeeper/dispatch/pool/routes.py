"""The pool's HTTP and websocket routes: ComfyUI's own (``server.py``), each also under ``/api``,
served under ``/ComfyBackendDirect/`` on the main port and at the root of ``--comfy_port``.

Every call is checked as the main API checks a caller: with accounts on, a login cookie or an API
key (``Authorization: Bearer``) of a user allowed to generate (SwarmUI's
``fundamental_generate_tab_access``); RequiredAuthorization applies as everywhere. SwarmUI's
``X-Swarm-Backend-ID`` header keeps a call to one backend (or the children of one). Before
anything else, a browser request from another site is refused (``origin.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from swarmkeeper import dotnet
from swarmkeeper.api.permissions import FUNDAMENTAL_GENERATE_TAB_ACCESS
from swarmkeeper.dispatch.pool import frontend, history, info, mask, transfer, userdata_routes
from swarmkeeper.dispatch.pool.body import TooLarge, body_limit, read_capped
from swarmkeeper.dispatch.pool.origin import cross_site_refusal
from swarmkeeper.dispatch.pool.validate import error_body
from swarmkeeper.dispatch.targets import PIN_HEADER
from swarmkeeper.exceptions import TransportError

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.dispatch.pool")
Handler = Callable[["Pool", Request, "int | None"], Awaitable[Response]]


class ComfyJSON(JSONResponse):
    """JSON as ComfyUI's aiohttp ``json_response`` writes it."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode()


def empty() -> Response:
    return Response(status_code=200)


def pin_of(connection: HTTPConnection) -> int | None:
    raw = connection.headers.get(PIN_HEADER)
    return dotnet.parse_int(raw) if raw else None


async def refusal(services: Services, connection: HTTPConnection) -> Response | None:
    """Why this caller may not use the pool (403 from another site, 401/403 as plain text), or None."""
    cross_site = cross_site_refusal(connection, services.config.allowed_origins)
    if cross_site is not None:
        return cross_site
    try:
        user = await services.users.user_for_request(connection)
    except TransportError as error:
        return PlainTextResponse(error.message, status_code=error.status_code)
    if user is None:
        return PlainTextResponse("Unauthorized", status_code=401)
    if not user.may(FUNDAMENTAL_GENERATE_TAB_ACCESS):
        return PlainTextResponse("Forbidden: this user may not generate.", status_code=403)
    return None


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        refused = await refusal(services, request)
        if refused is not None:
            return refused
        pool = services.dispatch.running_pool()
        if pool is None:
            return PlainTextResponse("The ComfyUI pool is not running.", status_code=503)
        return await handler(pool, request, pin_of(request))

    return endpoint


async def read_json(request: Request) -> tuple[Any, Response | None]:
    """The body as JSON (``{}`` when empty), or ComfyUI's 400 when it is not JSON or too large."""
    try:
        raw = await read_capped(request, body_limit(request))
    except TooLarge:
        return None, PlainTextResponse("Request Entity Too Large", status_code=413)
    if not raw.strip():
        return {}, None
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError):
        body = error_body("invalid_prompt", "The request body is not valid JSON.", "Invalid JSON body")
        return None, ComfyJSON(body, status_code=400)


# --- prompts and the queue ---


async def prompt_post(pool: Pool, request: Request, pin: int | None) -> Response:
    body, bad = await read_json(request)
    if bad is not None:
        return bad
    status, answer = pool.accept(body, pin=pin)
    if status == 200 and not pool.written(answer["prompt_id"]):
        await asyncio.sleep(0)  # the job's task sends the prompt to its backend first: the answer can wait
    return ComfyJSON(answer, status_code=status)


async def prompt_get(pool: Pool, request: Request, pin: int | None) -> Response:
    return ComfyJSON({"exec_info": {"queue_remaining": pool.remaining}})


async def queue_get(pool: Pool, request: Request, pin: int | None) -> Response:
    return ComfyJSON(pool.queue_view())


async def queue_post(pool: Pool, request: Request, pin: int | None) -> Response:
    body, bad = await read_json(request)
    if bad is not None:
        return bad
    if isinstance(body, dict):
        ids = [str(i) for i in body.get("delete") or [] if isinstance(i, str)]
        if body.get("clear") is True:
            ids = [item[1] for item in pool.queue_view()["queue_pending"]]
        await pool.delete_queued(ids)
    return empty()


async def interrupt(pool: Pool, request: Request, pin: int | None) -> Response:
    body, bad = await read_json(request)
    if bad is not None:
        return bad
    prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
    await pool.interrupt(prompt_id if isinstance(prompt_id, str) else None)
    return empty()


async def history_get(pool: Pool, request: Request, pin: int | None) -> Response:
    prompt_id = request.path_params.get("prompt_id")
    if prompt_id is not None:
        return ComfyJSON(await history.one(pool, prompt_id))
    max_items = dotnet.parse_int(request.query_params.get("max_items", ""))
    offset = dotnet.parse_int(request.query_params.get("offset", "")) or -1
    return ComfyJSON(await history.listing(pool, max_items, offset))


async def history_post(pool: Pool, request: Request, pin: int | None) -> Response:
    body, bad = await read_json(request)
    if bad is not None:
        return bad
    await history.change(pool, body)
    return empty()


# --- information ---


async def object_info(pool: Pool, request: Request, pin: int | None) -> Response:
    return ComfyJSON(info.object_info(pool, pin, request.path_params.get("node_class")))


async def system_stats(pool: Pool, request: Request, pin: int | None) -> Response:
    return ComfyJSON(await info.system_stats(pool, pin))


async def features(pool: Pool, request: Request, pin: int | None) -> Response:
    return ComfyJSON(await info.features(pool))


async def models(pool: Pool, request: Request, pin: int | None) -> Response:
    found = await info.models(pool, pin, request.path_params.get("folder"))
    return ComfyJSON(found) if found is not None else Response(status_code=404)


async def embeddings(pool: Pool, request: Request, pin: int | None) -> Response:
    found = await info.models(pool, pin, "embeddings") or []
    return ComfyJSON([str(name).rsplit(".", 1)[0] for name in found])


async def free(pool: Pool, request: Request, pin: int | None) -> Response:
    body, bad = await read_json(request)
    if bad is not None:
        return bad
    await info.free(pool, body)
    return empty()


# --- files ---


async def view(pool: Pool, request: Request, pin: int | None) -> Response:
    return await transfer.view(pool, request, pin)


async def upload_image(pool: Pool, request: Request, pin: int | None) -> Response:
    return await transfer.upload(pool, request, pin)


async def upload_mask(pool: Pool, request: Request, pin: int | None) -> Response:
    return await mask.upload_mask(pool, request, pin)


# --- the event socket ---


async def ws(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    pool = services.dispatch.running_pool()
    if pool is None or await refusal(services, websocket) is not None:
        await websocket.close(code=1008)
        return
    sid = websocket.query_params.get("clientId") or ""
    await pool.relay.serve(websocket, pool.remaining, pool.executing_for(sid) if sid else None)


async def ws_without_upgrade(request: Request) -> Response:
    return PlainTextResponse('No WebSocket UPGRADE hdr: None\n Can "Upgrade" only to "WebSocket".', status_code=400)


TABLE: list[tuple[str, str, Handler]] = [
    ("POST", "/prompt", prompt_post), ("GET", "/prompt", prompt_get),
    ("GET", "/queue", queue_get), ("POST", "/queue", queue_post), ("POST", "/interrupt", interrupt),
    ("GET", "/history", history_get), ("GET", "/history/{prompt_id}", history_get), ("POST", "/history", history_post),
    ("GET", "/object_info", object_info), ("GET", "/object_info/{node_class}", object_info),
    ("GET", "/system_stats", system_stats), ("GET", "/features", features),
    ("GET", "/models", models), ("GET", "/models/{folder}", models), ("GET", "/embeddings", embeddings),
    ("POST", "/free", free),
    ("GET", "/view", view), ("POST", "/upload/image", upload_image), ("POST", "/upload/mask", upload_mask),
    *frontend.TABLE, *userdata_routes.TABLE,
]


def pool_routes(prefix: str) -> list[BaseRoute]:
    """The table under ``prefix`` and ``prefix/api`` (ComfyUI serves every route under both)."""
    routes: list[BaseRoute] = []
    for base in (prefix, f"{prefix}/api"):
        routes += [Route(base + path, guarded(handler), methods=[method]) for method, path, handler in TABLE]
        routes += [WebSocketRoute(f"{base}/ws", ws), Route(f"{base}/ws", ws_without_upgrade, methods=["GET"])]
    # ComfyUI's page and its files, last: every path above is a route of the API
    routes.append(Route(prefix + "/{path:path}", guarded(frontend.WebFiles().serve), methods=["GET"]))
    return routes
