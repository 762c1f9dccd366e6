"""A SwarmUI double for tests: a real HTTP server on loopback that answers the routes a Swarm-API
backend calls exactly as SwarmUI does (reference §1, §2, §10; SwarmUI's ``BackendAPI.cs``,
``ModelsAPI.cs``, ``T2IAPI.cs``), with SwarmUI's shapes and error answers and nothing of
swarmkeeper's (no ``swarm_chain``, no ``status_reason``). There is no real SwarmUI (C#/.NET) in the
test environment: this double is how swarmkeeper's client is held to SwarmUI's server shapes.

It records every call (route and body), and misbehaves on request (``double.fault``):
``html`` (a 200 HTML page), ``garbage`` (200 text that is not JSON), ``error500`` (SwarmUI's
plain ``500 Internal Server Error``), ``huge`` (an endless body), ``hang`` (never answers),
``unauthorized`` (the global gate's 401 text).

    async with run_swarm_double() as double:
        double.add_backend(0, "comfyui_selfstart", features=["comfyui"])
        ...  # double.url, double.calls_to("FreeBackendMemory"), double.forget_sessions()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from swarmkeeper.net import SWARM_KEEP_ALIVE_SECONDS, free_port

JSONObject = dict[str, Any]
INVALID_SESSION = {"error": "Invalid session ID. You may need to refresh the page.", "error_id": "invalid_session_id"}


@dataclass
class DoubleBackend:
    """One backend of the double, as SwarmUI's ListBackends describes it."""

    id: int
    type: str
    status: str = "running"
    title: str = ""
    features: list[str] = field(default_factory=list)
    max_usages: int = 2
    can_load_models: bool = True
    current_model: str | None = None

    def entry(self, full_data: bool) -> JSONObject:
        entry: JSONObject = {
            "type": self.type, "status": self.status, "id": self.id, "settings": {}, "modcount": 0,
            "features": list(self.features), "enabled": True, "title": self.title, "max_usages": self.max_usages,
            "seconds_since_used": 0, "time_since_used": "Never", "can_load_models": self.can_load_models,
        }
        if full_data:
            entry["current_model"] = self.current_model
        return entry


@dataclass
class SwarmDouble:
    server_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    backends: dict[int, DoubleBackend] = field(default_factory=dict)
    models: dict[str, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, JSONObject]] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    fault: str | None = None
    url: str = ""
    #: Set when the double stops: requests held by the ``hang`` fault are let go then.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def add_backend(self, backend_id: int, backend_type: str, **fields: Any) -> DoubleBackend:
        backend = DoubleBackend(backend_id, backend_type, **fields)
        self.backends[backend_id] = backend
        return backend

    def calls_to(self, route: str) -> list[JSONObject]:
        return [body for name, body in self.calls if name == route]

    def forget_sessions(self) -> None:
        """As a SwarmUI restarted with --no_persist: every session id becomes invalid."""
        self.sessions.clear()

    # --- routes ---

    def get_new_session(self, body: JSONObject) -> JSONObject:
        session_id = uuid.uuid4().hex
        self.sessions.add(session_id)
        return {"session_id": session_id, "user_id": "local", "output_append_user": True, "version": "0.9.7.0",
                "server_id": self.server_id, "permissions": ["*"]}

    def list_backends(self, body: JSONObject) -> JSONObject:
        full = body.get("full_data") is True
        listed = sorted(self.backends.values(), key=lambda backend: backend.id)
        return {str(backend.id): backend.entry(full) for backend in listed
                if body.get("nonreal") is True or backend.id >= 0}

    def list_models(self, body: JSONObject) -> JSONObject:
        subtype = body.get("subtype", "Stable-Diffusion")
        if subtype not in self.models and subtype != "Wildcards":
            return {"error": "Invalid sub-type."}
        names = sorted(self.models.get(subtype, []))
        files = [{"name": name, "title": None, "preview_image": "imgs/model_placeholder.jpg", "local": True}
                 for name in names]
        return {"folders": sorted({name.rsplit("/", 1)[0] for name in names if "/" in name}), "files": files}

    def free_backend_memory(self, body: JSONObject) -> JSONObject:
        selector = str(body.get("backend", "all"))
        count = sum(1 for backend in self.backends.values()
                    if backend.status == "running" and selector in ("all", str(backend.id)))
        return {"result": count > 0, "count": count}

    def trigger_refresh(self, body: JSONObject) -> JSONObject:
        models = {category: [[name, None] for name in sorted(names)] for category, names in self.models.items()}
        return {"list": [], "groups": [], "models": models, "model_compat_classes": {}, "model_classes": {},
                "wildcards": [], "param_edits": None}

    def select_model(self, body: JSONObject) -> JSONObject:
        model = str(body.get("model", ""))
        if model not in self.models.get("Stable-Diffusion", []):
            return {"error": "Model not found."}
        for backend in self.backends.values():
            if str(body.get("backendId", "")) in ("", str(backend.id)):
                backend.current_model = model
        return {"success": True}

    # --- the transport ---

    async def endpoint(self, request: Request) -> Response:
        route = request.path_params["route"].lower()
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error_id": "internal_error", "error": "An internal error occurred"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error_id": "internal_error", "error": "An internal error occurred"}, 400)
        self.calls.append((request.path_params["route"], body))
        faulty = await self._faulty()
        if faulty is not None:
            return faulty
        handler = self._handlers().get(route)
        if route != "getnewsession" and body.get("session_id") not in self.sessions:
            return JSONResponse(INVALID_SESSION, 401)
        if handler is None:
            return JSONResponse({"error_id": "bad_route", "error": "Unknown API route"}, 400)
        return JSONResponse(handler(body))

    def _handlers(self) -> dict[str, Any]:
        return {"getnewsession": self.get_new_session, "listbackends": self.list_backends,
                "listmodels": self.list_models, "freebackendmemory": self.free_backend_memory,
                "triggerrefresh": self.trigger_refresh, "selectmodel": self.select_model}

    async def _faulty(self) -> Response | None:
        if self.fault == "hang":
            await self.stopping.wait()
            return PlainTextResponse("stopped", 503)
        if self.fault == "html":
            return HTMLResponse("<!doctype html><html><body>Welcome to nginx!</body></html>")
        if self.fault == "garbage":
            return PlainTextResponse("this is not json {")
        if self.fault == "error500":
            return PlainTextResponse("500 Internal Server Error", 500)
        if self.fault == "unauthorized":
            return PlainTextResponse("Unauthorized", 401)
        if self.fault == "huge":
            return StreamingResponse(_endless(), media_type="application/json")
        return None

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/API/{route}", self.endpoint, methods=["POST"])])


async def _endless() -> AsyncIterator[bytes]:
    yield b'{"padding": "'
    chunk = b"x" * (1024 * 1024)
    while True:
        yield chunk
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def run_swarm_double(double: SwarmDouble | None = None) -> AsyncIterator[SwarmDouble]:
    """Serve a SwarmUI double on a free loopback port for the ``async with`` block."""
    double = double or SwarmDouble()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(double.app(), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                                           timeout_keep_alive=SWARM_KEEP_ALIVE_SECONDS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    double.url = f"http://127.0.0.1:{port}"
    try:
        yield double
    finally:
        double.stopping.set()
        server.should_exit = True
        await task
