"""Wiring only: build the services from the configuration, and the Starlette app around them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, WebSocketRoute

from swarmkeeper.accounts.feature import FEATURE as ACCOUNTS
from swarmkeeper.accounts.feature import build_accounts, user_source
from swarmkeeper.adoption import ADOPTION
from swarmkeeper.api import backend_routes, basic_routes, log_routes
from swarmkeeper.api.model_routes import MODELS
from swarmkeeper.api.routes import RouteTable
from swarmkeeper.api.sessions import SessionStore
from swarmkeeper.api.transport import api_http, api_websocket, no_get_api
from swarmkeeper.api.views import ListingCache
from swarmkeeper.apidocs.feature import OPENAPI
from swarmkeeper.backends.base import BackendServices, BackendType, PortCounter, TypeCatalog
from swarmkeeper.backends.builtin import BUILTIN_TYPES
from swarmkeeper.backends.lifecycle import InitPolicy, Lifecycle
from swarmkeeper.backends.manager import BackendManager
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.store import BackendStore
from swarmkeeper.config import ServerConfig, ServerSettings
from swarmkeeper.control import ControlWatch
from swarmkeeper.datadir import make_private_dir, private_paths, tighten
from swarmkeeper.db import Database
from swarmkeeper.dispatch.feature import DISPATCH, build_dispatch
from swarmkeeper.events import EventHub
from swarmkeeper.features import Feature
from swarmkeeper.health import HEALTH
from swarmkeeper.logs import LogStore
from swarmkeeper.metrics import Metrics
from swarmkeeper.metrics.feature import METRICS
from swarmkeeper.net import port_in_use
from swarmkeeper.outputs.view import OUTPUTS
from swarmkeeper.server import routes as server_tab
from swarmkeeper.services import Services
from swarmkeeper.web.feature import WEB

log = logging.getLogger("swarmkeeper")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


#: The core's own routes, then each feature's, in this order.
CORE_ROUTES = (basic_routes.routes, backend_routes.routes, log_routes.routes, server_tab.routes)
FEATURES: list[Feature] = [ACCOUNTS, WEB, METRICS, HEALTH, OPENAPI, MODELS, DISPATCH, OUTPUTS, ADOPTION]


def api_routes(features: list[Feature]) -> RouteTable:
    table = RouteTable()
    for routes in (*CORE_ROUTES, *(feature.routes for feature in features)):
        table.include(routes)
    return table


def backend_types(config: ServerConfig) -> TypeCatalog:
    """The built-in types, then each plug-in module's ``BACKEND_TYPES``."""
    catalog = TypeCatalog(BUILTIN_TYPES)
    for module_name in config.backend_type_modules:
        module = importlib.import_module(module_name)
        types: list[BackendType[Any]] = module.BACKEND_TYPES
        for backend_type in types:
            catalog.register(backend_type)
    return catalog


def port_counter(settings: ServerSettings) -> PortCounter:
    start = settings.network.BackendStartingPort
    if settings.network.BackendPortRandomize:
        start += random.randrange(2000)
    return PortCounter(last=start, in_use=port_in_use)


async def start_services(config: ServerConfig, logs: LogStore | None = None,
                         features: list[Feature] | None = None) -> Services:
    """Read the data folder and start everything. A file that cannot be used raises DataFileError
    (a StartupError) before anything runs; a failure later stops what had started, then raises."""
    features = FEATURES if features is None else features
    make_private_dir(config.data_dir)
    tighten(private_paths(config.data_dir, config.backends_path, config.settings_path))
    settings = ServerSettings.load(config.settings_path, write_default=not config.no_persist)
    db = await Database.open(config.db_path)
    services = _services(config, settings, db, logs, features)
    started: list[Feature] = []
    try:
        await services.sessions.load()
        services.manager.lifecycle.start()
        services.manager.load()
        for feature in features:
            if feature.start is not None:
                await feature.start(services)
            started.append(feature)
    except BaseException:
        await stop_services(services, started)
        raise
    log.info("swarmkeeper is ready: %s backends, data in %s", len(services.registry), config.data_dir)
    return services


def _services(config: ServerConfig, settings: ServerSettings, db: Database, logs: LogStore | None,
              features: list[Feature]) -> Services:
    """Build the services, each part given what it needs (nothing started yet)."""
    server_id, metrics, sessions = str(uuid.uuid4()), Metrics(), SessionStore(db)
    manager = backend_manager(config, settings, server_id, metrics)
    accounts = build_accounts(config, settings, db, sessions)
    dispatch = build_dispatch(manager, settings.backends)
    return Services(
        config=config, settings=settings, db=db, sessions=sessions, users=user_source(accounts, config),
        types=manager.types, registry=manager.registry, manager=manager, events=manager.events,
        logs=logs or LogStore(), routes=api_routes(features), accounts=accounts, dispatch=dispatch,
        status_counts=dispatch.session_counts, model_loader=dispatch.load_model, server_id=server_id, metrics=metrics,
        control=ControlWatch(max(config.require_control_within, 0.0) * 60),
        listing=ListingCache(manager.registry.changes()))


def backend_manager(config: ServerConfig, settings: ServerSettings, server_id: str, metrics: Metrics) -> BackendManager:
    """The registry, lifecycle and store, and what every backend shares (BackendServices)."""
    registry = BackendRegistry()
    lifecycle = Lifecycle(registry, InitPolicy(max_init_attempts=settings.backends.MaxBackendInitAttempts,
                                               all_fast=settings.backends.AllBackendsLoadFast))
    backend_services = BackendServices(data_dir=config.data_dir, server_id=server_id, ports=port_counter(settings),
                                       metrics=metrics, tuning=config.tuning, autoscale=config.autoscale)
    return BackendManager(types=backend_types(config), registry=registry, lifecycle=lifecycle,
                          store=BackendStore(config.backends_path, persist=not config.no_persist),
                          services=backend_services, events=EventHub())


async def stop_services(services: Services, features: list[Feature] | None = None) -> None:
    for feature in reversed(FEATURES if features is None else features):
        if feature.stop is not None:
            await feature.stop(services)
    log.info("Shutting down: stopping every backend")
    await services.manager.shutdown()
    await services.db.close()
    log.info("Shutdown complete")


def http_routes(features: list[Feature]) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/API/{route:path}", api_http, methods=ALL_METHODS),
        Route("/api/{route:path}", api_http, methods=ALL_METHODS),
        WebSocketRoute("/API/{route:path}", api_websocket),
        WebSocketRoute("/api/{route:path}", api_websocket),
        Route("/Error/NoGetAPI", no_get_api),
    ]
    for feature in features:
        routes += feature.http_routes()
    return routes


def _request_shutdown(app: Starlette) -> None:
    """Stop as Ctrl-C does, when run by ``swarmkeeper serve`` (which sets app.state.request_shutdown)."""
    request = getattr(app.state, "request_shutdown", None)
    if request is not None:
        request()
    else:
        log.warning("This server was not started by 'swarmkeeper serve'; it cannot stop itself")


def create_app(config: ServerConfig, logs: LogStore | None = None, features: list[Feature] | None = None) -> Starlette:
    chosen = FEATURES if features is None else features

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # ``serve`` starts the services before it listens (so a failed start is one line, not a
        # traceback from uvicorn's lifespan) and leaves them in app.state; tests start them here.
        services = getattr(app.state, "services", None) or await start_services(config, logs, chosen)
        app.state.services = services
        services.dispatch.serve(app)  # what the ComfyUI pool's own port serves
        watch = asyncio.create_task(services.control.run(lambda: _request_shutdown(app)), name="control-watch")
        try:
            yield
        finally:
            watch.cancel()
            await stop_services(services, chosen)

    middleware = [item for feature in chosen for item in feature.middleware()]
    return Starlette(routes=http_routes(chosen), middleware=middleware, lifespan=lifespan)
