"""Everything a running server is made of, built by app.py and handed to every route. It is
complete when built: each part is given here, typed, and nothing is added later. The parts of two
features (accounts, dispatch) are named here too, as types only (pyproject.toml's layer contract
ignores these two imports): their routes reach them as ``call.services.accounts`` and
``call.services.dispatch``; the core itself uses neither."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swarmkeeper.api.model_refresh import ModelRefresher
from swarmkeeper.api.routes import RouteTable
from swarmkeeper.api.sessions import Session, SessionStore
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

if TYPE_CHECKING:
    from swarmkeeper.accounts.service import Accounts
    from swarmkeeper.dispatch.service import Dispatch

#: GetCurrentStatus's four counts (waiting_gens, loading_models, waiting_backends, live_gens) for
#: a session, or for the work of no session.
StatusCounts = Callable[[Session | None], dict[str, int]]
#: Loads a checkpoint on one backend; True when it loaded.
ModelLoader = Callable[[BackendRecord, str], Awaitable[bool]]


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
    #: Users, logins, keys and the audit log (started by the accounts feature).
    accounts: Accounts
    #: The scheduler and the ComfyUI pool (started by the dispatch feature).
    dispatch: Dispatch
    #: GetCurrentStatus's counts for a session (the dispatch's, given by app.py).
    status_counts: StatusCounts
    #: Loads a model on one backend by running work there (the dispatch's, given by app.py: SelectModel
    #: on backends that cannot load a model by themselves, ComfyUI's); True when it loaded.
    model_loader: ModelLoader
    #: A per-process id, for loop prevention when servers chain to each other.
    server_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    listing: ListingCache = field(default_factory=ListingCache)
    #: Counters and histograms (GET /metrics); the same object as BackendServices.metrics.
    metrics: Metrics = field(default_factory=Metrics)
    #: CPU, RAM and GPU readings (GetServerResourceInfo).
    resources: ResourceReader = field(default_factory=ResourceReader)
    #: TriggerRefresh's work (one refresh at a time).
    models: ModelRefresher = field(default_factory=ModelRefresher)
    #: When a master last took control (AdminTakeControl; --require_control_within).
    control: ControlWatch = field(default_factory=ControlWatch)
