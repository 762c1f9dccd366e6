"""Wiring only: build the services from the configuration, and the Starlette app around them."""

from __future__ import annotations

import contextlib
import importlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, WebSocketRoute

from swarmkeeper.api import backend_routes, basic_routes, log_routes
from swarmkeeper.api.routes import RouteTable
from swarmkeeper.api.sessions import SessionStore
from swarmkeeper.api.transport import api_http, api_websocket, no_get_api
from swarmkeeper.api.users import LocalOwner
from swarmkeeper.backends.base import BackendServices, BackendType, PortCounter, TypeCatalog
from swarmkeeper.backends.builtin import BUILTIN_TYPES
from swarmkeeper.backends.lifecycle import InitPolicy, Lifecycle
from swarmkeeper.backends.manager import BackendManager
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.store import BackendStore
from swarmkeeper.config import ServerConfig, ServerSettings
from swarmkeeper.db import Database
from swarmkeeper.events import EventHub
from swarmkeeper.logs import LogStore
from swarmkeeper.net import port_in_use
from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def api_routes() -> RouteTable:
    table = RouteTable()
    for module in (basic_routes, backend_routes, log_routes):
        table.include(module.routes)
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


async def start_services(config: ServerConfig, logs: LogStore | None = None) -> Services:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    settings = ServerSettings.load(config.settings_path)
    db = await Database.open(config.db_path)
    sessions = SessionStore(db)
    await sessions.load()
    registry = BackendRegistry()
    events = EventHub()
    lifecycle = Lifecycle(registry, InitPolicy(max_init_attempts=settings.backends.MaxBackendInitAttempts,
                                               all_fast=settings.backends.AllBackendsLoadFast))
    services = Services(
        config=config, settings=settings, db=db, sessions=sessions, users=LocalOwner(config.user_id),
        types=backend_types(config), registry=registry, manager=None,  # type: ignore[arg-type]  # set below
        events=events, logs=logs or LogStore(), routes=api_routes())
    backend_services = BackendServices(data_dir=config.data_dir, server_id=services.server_id,
                                       ports=port_counter(settings))
    services.manager = BackendManager(types=services.types, registry=registry, lifecycle=lifecycle,
                                      store=BackendStore(config.backends_path), services=backend_services,
                                      events=events)
    lifecycle.start()
    services.manager.load()
    log.info("swarmkeeper is ready: %s backends, data in %s", len(registry), config.data_dir)
    return services


async def stop_services(services: Services) -> None:
    log.info("Shutting down: stopping every backend")
    await services.manager.shutdown()
    await services.db.close()
    log.info("Shutdown complete")


def http_routes() -> list[BaseRoute]:
    return [
        Route("/API/{route:path}", api_http, methods=ALL_METHODS),
        Route("/api/{route:path}", api_http, methods=ALL_METHODS),
        WebSocketRoute("/API/{route:path}", api_websocket),
        WebSocketRoute("/api/{route:path}", api_websocket),
        Route("/Error/NoGetAPI", no_get_api),
    ]


def create_app(config: ServerConfig, logs: LogStore | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await start_services(config, logs)
        app.state.services = services
        try:
            yield
        finally:
            await stop_services(services)

    return Starlette(routes=http_routes(), lifespan=lifespan)
