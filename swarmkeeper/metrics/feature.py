"""The metrics feature: ``GET /metrics`` in Prometheus' text format (OpenMetrics when asked), the
API latency middleware, and at start the per-type counters and the backend gauges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from swarmkeeper.features import Feature
from swarmkeeper.metrics.backends import BackendCollector
from swarmkeeper.metrics.farm import FarmCollector
from swarmkeeper.metrics.latency import APILatency

if TYPE_CHECKING:
    from swarmkeeper.services import Services


async def start(services: Services) -> None:
    services.metrics.declare_types(backend_type.id for backend_type in services.types)
    services.metrics.add_collector(BackendCollector(services.registry, services.types))
    services.metrics.add_collector(FarmCollector(services.registry, services.metrics.farm))


async def scrape(request: Request) -> Response:
    services: Services = request.app.state.services
    body, content_type = services.metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def metrics_routes() -> list[BaseRoute]:
    return [Route("/metrics", scrape, methods=["GET"])]


METRICS = Feature(name="metrics", http_routes=metrics_routes, middleware=lambda: [Middleware(APILatency)],
                  start=start)
