"""Everything a running server is made of, built by app.py and handed to every route."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from swarmkeeper.api.routes import RouteTable
from swarmkeeper.api.sessions import SessionStore
from swarmkeeper.api.users import UserSource
from swarmkeeper.api.views import ListingCache
from swarmkeeper.backends.base import TypeCatalog
from swarmkeeper.backends.manager import BackendManager
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.config import ServerConfig, ServerSettings
from swarmkeeper.control import ControlWatch
from swarmkeeper.db import Database
from swarmkeeper.events import EventHub
from swarmkeeper.logs import LogStore
from swarmkeeper.metrics import Metrics
from swarmkeeper.resources import ResourceReader


@dataclass
class Services:
    config: ServerConfig
    settings: ServerSettings
    db: Database
    sessions: SessionStore
    users: UserSource
    types: TypeCatalog
    registry: BackendRegistry
    manager: BackendManager
    events: EventHub
    logs: LogStore
    routes: RouteTable
    #: A per-process id, for loop prevention when servers chain to each other.
    server_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    #: Loads a model on one backend by running work there (set by the dispatch feature: SelectModel
    #: on backends that cannot load a model by themselves, ComfyUI's); True when it loaded.
    model_loader: Callable[[BackendRecord, str], Awaitable[bool]] | None = None
    listing: ListingCache = field(default_factory=ListingCache)
    #: Counters and histograms (GET /metrics); the same object as BackendServices.metrics.
    metrics: Metrics = field(default_factory=Metrics)
    #: CPU, RAM and GPU readings (GetServerResourceInfo).
    resources: ResourceReader = field(default_factory=ResourceReader)
    #: When a master last took control (AdminTakeControl; --require_control_within).
    control: ControlWatch = field(default_factory=ControlWatch)
    #: Parts added by later features (scheduler, accounts, metrics), by name.
    extra: dict[str, Any] = field(default_factory=dict)
