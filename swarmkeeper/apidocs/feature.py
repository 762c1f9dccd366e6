"""``GET /openapi.json``: the OpenAPI document of the running server's routes (built once, at the
first request, when every feature has added its routes). With accounts on, it needs a credential
(any role: ``fundamental``); the same reference is in docs/api/ for everyone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from swarmkeeper.api.credentials import refusal
from swarmkeeper.api.permissions import FUNDAMENTAL_FLAG
from swarmkeeper.apidocs.openapi import openapi_document
from swarmkeeper.features import Feature

if TYPE_CHECKING:
    from swarmkeeper.services import Services

#: The permission reading the document needs when accounts are on: any logged-in caller holds it.
DOCS_FLAG = FUNDAMENTAL_FLAG


def http_paths(request: Request) -> set[str]:
    return {path for route in request.app.routes if isinstance(path := getattr(route, "path", None), str)}


class OpenAPIJSON:
    """The endpoint, with the document it built at the first request (one per app)."""

    def __init__(self) -> None:
        self.body: bytes | None = None

    async def serve(self, request: Request) -> Response:
        services: Services = request.app.state.services
        refused = await refusal(services, request, DOCS_FLAG)
        if refused is not None:
            return refused
        if self.body is None:
            self.body = orjson.dumps(openapi_document(services.routes, http_paths(request)))
        return Response(self.body, media_type="application/json", headers={"Cache-Control": "no-store"})


def openapi_routes() -> list[BaseRoute]:
    return [Route("/openapi.json", OpenAPIJSON().serve, methods=["GET"])]


OPENAPI = Feature(name="openapi", http_routes=openapi_routes)
