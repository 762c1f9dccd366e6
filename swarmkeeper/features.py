"""How a part of the server beyond the core plugs in: each feature module declares one
:class:`Feature` (its API routes, its own HTTP routes, its middleware, and what it starts and
stops), and app.py lists the features in order. A feature whose routes need a part of their own
(accounts, dispatch) has it built by app.py with the other services and given to Services as a
typed field; the start and stop hooks start and stop it. Nothing else in the core changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from swarmkeeper.api.routes import RouteTable

if TYPE_CHECKING:
    from swarmkeeper.services import Services


@dataclass(frozen=True)
class Feature:
    name: str
    #: API routes (``POST /API/<Route>``) the feature adds.
    routes: RouteTable = field(default_factory=RouteTable)
    #: Other HTTP routes (pages, streams, metrics); given the routes so far, in case it wraps them.
    http_routes: Callable[[], list[BaseRoute]] = field(default=lambda: [])
    #: Middleware, outermost first.
    middleware: Callable[[], list[Middleware]] = field(default=lambda: [])
    #: Runs once the core services are up (backends loaded), in feature order.
    start: Callable[[Services], Awaitable[None]] | None = None
    #: Runs at shutdown, in reverse feature order, before the backends are stopped.
    stop: Callable[[Services], Awaitable[None]] | None = None
