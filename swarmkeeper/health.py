"""Kubernetes-style probes, kept apart from any one backend's health:

- ``GET /health/live``: 200 while the process answers at all.
- ``GET /health/ready``: 200 when the server can take work, else 503. Ready means the registry
  is loaded (start-up finished), the server is not stopping, and at least one backend is
  ``running``; ``serve --ready_requires_backend false`` drops the last condition (a server that
  is only managed, never generated on).

Both answer a small JSON object, never cached. ``/health/ready`` gives its detail (the reason,
how many backends, how many running) only to a caller who may list backends; anyone else (with
accounts on: a caller without a credential) gets just ``{"status"}`` and the status code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from swarmkeeper.api.credentials import permitted
from swarmkeeper.api.permissions import VIEW_BACKENDS_LIST
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.features import Feature
from swarmkeeper.types import JSONObject

if TYPE_CHECKING:
    from swarmkeeper.services import Services

NO_STORE = {"Cache-Control": "no-store"}
#: Who sees why the server is (not) ready and its backend counts.
DETAIL_FLAG = VIEW_BACKENDS_LIST


@dataclass(frozen=True)
class Readiness:
    ready: bool
    #: Why not, in words an operator can act on ("" when ready).
    reason: str = ""
    backends: int = 0
    running: int = 0

    def status(self) -> JSONObject:
        """What anyone may know: ready or not."""
        return {"status": "ready" if self.ready else "not_ready"}

    def body(self) -> JSONObject:
        return {"status": "ready" if self.ready else "not_ready", "reason": self.reason,
                "backends": self.backends, "running": self.running}


def readiness(services: Services | None) -> Readiness:
    if services is None:
        return Readiness(False, "The server is still starting.")
    if services.manager.lifecycle.stopping.is_set():
        return Readiness(False, "The server is stopping.")
    records = services.registry.all()
    running = sum(1 for record in records if record.status is BackendStatus.RUNNING)
    if running == 0 and services.config.ready_requires_backend:
        return Readiness(False, "No backend is running.", len(records), running)
    return Readiness(True, "", len(records), running)


async def live(request: Request) -> Response:
    return JSONResponse({"status": "live"}, headers=NO_STORE)


async def ready(request: Request) -> Response:
    services: Services | None = getattr(request.app.state, "services", None)
    verdict = readiness(services)
    detailed = services is not None and await permitted(services, request, DETAIL_FLAG)
    body = verdict.body() if detailed else verdict.status()
    return JSONResponse(body, status_code=200 if verdict.ready else 503, headers=NO_STORE)


def health_routes() -> list[BaseRoute]:
    return [Route("/health/live", live, methods=["GET"]), Route("/health/ready", ready, methods=["GET"])]


HEALTH = Feature(name="health", http_routes=health_routes)
