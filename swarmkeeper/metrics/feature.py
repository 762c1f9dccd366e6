"""The metrics feature: ``GET /metrics`` in Prometheus' text format (OpenMetrics when asked), the
API latency middleware, and at start the per-type counters and the backend gauges.

With accounts on, a scrape needs a credential holding ``view_logs`` (admins and owners: metrics
tell as much about the server as its logs), e.g. an API key narrowed to the admin role;
``--public_metrics`` opens it to anyone who can connect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from swarmkeeper.api.credentials import refusal
from swarmkeeper.api.permissions import VIEW_LOGS
from swarmkeeper.features import Feature
from swarmkeeper.metrics.backends import BackendCollector
from swarmkeeper.metrics.farm import FarmCollector
from swarmkeeper.metrics.latency import APILatency

if TYPE_CHECKING:
    from swarmkeeper.services import Services

#: The permission a scrape needs when accounts are on (and --public_metrics is off).
METRICS_FLAG = VIEW_LOGS


async def start(services: Services) -> None:
    services.metrics.declare_types(backend_type.id for backend_type in services.types)
    services.metrics.add_collector(BackendCollector(services.registry, services.types))
    services.metrics.add_collector(FarmCollector(services.registry, services.metrics.farm))


async def scrape(request: Request) -> Response:
    services: Services = request.app.state.services
    if not services.config.public_metrics:
        refused = await refusal(services, request, METRICS_FLAG)
        if refused is not None:
            return refused
    body, content_type = services.metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def metrics_routes() -> list[BaseRoute]:
    return [Route("/metrics", scrape, methods=["GET"])]


METRICS = Feature(name="metrics", http_routes=metrics_routes, middleware=lambda: [Middleware(APILatency)],
                  start=start)
