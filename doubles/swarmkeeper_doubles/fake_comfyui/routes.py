"""ComfyUI's HTTP and websocket routes (and their ``/api`` twins), ``/__fake__``, and the app."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from swarmkeeper_doubles.fake_comfyui.engine import Call, Client, FakeComfy
from swarmkeeper_doubles.fake_comfyui.faults import GarbageMiddleware
from swarmkeeper_doubles.fake_comfyui.options import Fault
from swarmkeeper_doubles.fake_comfyui.reference import MODEL_FOLDERS, SERVER_FEATURES, fixture


class ComfyJSON(JSONResponse):
    """JSON as aiohttp's ``json_response`` writes it (``json.dumps`` spacing, utf-8 charset)."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode()


def empty() -> Response:
    """ComfyUI's bare 200 for POSTs that change state."""
    return Response(status_code=200)


async def json_body(request: Request) -> Any:
    """The request's JSON body, ``{}`` when empty or not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}


class Routes:
    """The HTTP and websocket handlers, one short method per ComfyUI route."""

    def __init__(self, engine: FakeComfy) -> None:
        self.engine = engine

    async def system_stats(self, request: Request) -> Response:
        return ComfyJSON(fixture("system_stats.json"))

    async def features(self, request: Request) -> Response:
        return ComfyJSON(SERVER_FEATURES)

    async def object_info(self, request: Request) -> Response:
        await asyncio.sleep(self.engine.options.slow_object_info)
        info = dict(self.engine.object_info)
        uploaded = sorted(n for n in self.engine.files.inputs() if "/" not in n)
        load = copy.deepcopy(info["LoadImage"])
        load["input"]["required"]["image"][0] = uploaded
        info["LoadImage"] = load
        node_class = request.path_params.get("node_class")
        if node_class is not None:
            return ComfyJSON({node_class: info[node_class]} if node_class in info else {})
        return ComfyJSON(info)

    async def prompt_post(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("500 Internal Server Error\n\nServer got itself in trouble", 500)
        if not isinstance(body, dict):
            return PlainTextResponse("500 Internal Server Error\n\nServer got itself in trouble", 500)
        status, answer = await self.engine.submit(body)
        return ComfyJSON(answer, status_code=status)

    async def prompt_get(self, request: Request) -> Response:
        return ComfyJSON({"exec_info": {"queue_remaining": self.engine.queue_remaining()}})

    async def queue_get(self, request: Request) -> Response:
        return ComfyJSON(self.engine.queue_view())

    async def queue_post(self, request: Request) -> Response:
        self.engine.change_queue(await json_body(request))
        await self.engine.broadcast_status()
        return empty()

    async def history_get(self, request: Request) -> Response:
        prompt_id = request.path_params.get("prompt_id")
        if prompt_id is not None:
            entry = self.engine.history.get(prompt_id)
            return ComfyJSON({prompt_id: entry} if entry else {})
        max_items = request.query_params.get("max_items")
        offset = int(request.query_params.get("offset", -1))
        return ComfyJSON(self.engine.history_view(int(max_items) if max_items else None, offset))

    async def history_post(self, request: Request) -> Response:
        self.engine.change_history(await json_body(request))
        return empty()

    async def interrupt(self, request: Request) -> Response:
        body = await json_body(request)
        self.engine.interrupt(body.get("prompt_id") if isinstance(body, dict) else None)
        return empty()

    async def free(self, request: Request) -> Response:
        body = await json_body(request)
        self.engine.free(body if isinstance(body, dict) else {})
        return empty()

    async def models(self, request: Request) -> Response:
        folder = request.path_params.get("folder")
        if folder is None:
            return ComfyJSON(MODEL_FOLDERS)
        if folder not in MODEL_FOLDERS:
            return Response(status_code=404)
        return ComfyJSON(list(self.engine.options.models.get(folder, [])))

    async def embeddings(self, request: Request) -> Response:
        return ComfyJSON(list(self.engine.options.models.get("embeddings", [])))

    async def view(self, request: Request) -> Response:
        query = request.query_params
        filename, subfolder = query.get("filename", ""), query.get("subfolder", "")
        if not filename:
            return Response(status_code=404)
        if ".." in filename or filename.startswith("/"):
            return Response(status_code=400)
        if ".." in subfolder.split("/") or subfolder.startswith("/"):
            return Response(status_code=403)
        data = self.engine.files.get(query.get("type", "output"), subfolder, filename)
        if data is None:
            return Response(status_code=404)
        headers = {"Content-Disposition": f'filename="{filename}"'}
        return Response(data, media_type="image/png", headers=headers)

    async def upload_image(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            return Response(status_code=400)
        data = await upload.read()
        kind = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
        name = self.engine.files.upload(kind, subfolder, upload.filename or "image.png", data, overwrite)
        return ComfyJSON({"name": name, "subfolder": subfolder, "type": kind})

    async def ws_without_upgrade(self, request: Request) -> Response:
        text = 'No WebSocket UPGRADE hdr: None\n Can "Upgrade" only to "WebSocket".'
        return PlainTextResponse(text, status_code=400)

    async def index(self, request: Request) -> Response:
        return Response("<!DOCTYPE html><html><body>fake ComfyUI</body></html>", media_type="text/html")

    async def ws(self, socket: WebSocket) -> None:
        await socket.accept()
        sid = socket.query_params.get("clientId") or uuid.uuid4().hex
        client = Client(socket)
        await self.engine.connected(sid, client)
        try:
            while True:
                await self.on_message(sid, client, await socket.receive_text())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.engine.disconnected(sid, client)

    async def on_message(self, sid: str, client: Client, text: str) -> None:
        """The one client message ComfyUI acts on: ``feature_flags``."""
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(text)
            if message.get("type") == "feature_flags":
                client.preview_metadata = bool(message.get("data", {}).get("supports_preview_metadata"))
                await self.engine.send(sid, "feature_flags", SERVER_FEATURES)

    # ----- inspection

    async def fake_calls(self, request: Request) -> Response:
        return ComfyJSON([c.as_dict() for c in self.engine.calls])

    async def fake_fault(self, request: Request) -> Response:
        body = await json_body(request)
        fault = body.get("fault") if isinstance(body, dict) else None
        self.engine.fault = Fault(fault) if fault else None
        return ComfyJSON({"fault": fault})


def recorded(engine: FakeComfy, handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """Wrap a handler so the request is listed in ``engine.calls`` (JSON bodies decoded)."""

    async def endpoint(request: Request) -> Response:
        body: Any = None
        if "multipart/" not in request.headers.get("content-type", ""):
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        path = request.url.path
        route = path.removeprefix("/api") if path.startswith("/api/") else path
        call = Call(request.method, path, route, dict(request.query_params), body, dict(request.headers))
        engine.calls.append(call)
        return await handler(request)

    return endpoint


def comfy_routes(engine: FakeComfy, routes: Routes) -> list[BaseRoute]:
    """ComfyUI's route table (each is also served under ``/api``)."""
    table: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
        ("GET", "/system_stats", routes.system_stats),
        ("GET", "/features", routes.features),
        ("GET", "/object_info", routes.object_info),
        ("GET", "/object_info/{node_class}", routes.object_info),
        ("POST", "/prompt", routes.prompt_post),
        ("GET", "/prompt", routes.prompt_get),
        ("GET", "/queue", routes.queue_get),
        ("POST", "/queue", routes.queue_post),
        ("GET", "/history", routes.history_get),
        ("GET", "/history/{prompt_id}", routes.history_get),
        ("POST", "/history", routes.history_post),
        ("POST", "/interrupt", routes.interrupt),
        ("POST", "/free", routes.free),
        ("GET", "/models", routes.models),
        ("GET", "/models/{folder}", routes.models),
        ("GET", "/embeddings", routes.embeddings),
        ("GET", "/view", routes.view),
        ("POST", "/upload/image", routes.upload_image),
    ]
    http: list[BaseRoute] = [Route(p, recorded(engine, h), methods=[m]) for m, p, h in table]
    return [*http, WebSocketRoute("/ws", routes.ws), Route("/ws", routes.ws_without_upgrade, methods=["GET"])]


def build_app(engine: FakeComfy) -> Starlette:
    """The Starlette app: ComfyUI's routes, their ``/api`` twins, and ``/__fake__``."""
    routes = Routes(engine)
    comfy = comfy_routes(engine, routes)
    inspection = [
        Route("/__fake__/calls", routes.fake_calls, methods=["GET"]),
        Route("/__fake__/fault", routes.fake_fault, methods=["POST"]),
    ]
    table = [*inspection, *comfy, Mount("/api", routes=comfy), Route("/", routes.index, methods=["GET"])]
    app = Starlette(routes=table)
    app.add_middleware(GarbageMiddleware, engine=engine)
    return app
