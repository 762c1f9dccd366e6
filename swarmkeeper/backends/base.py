"""The interface between a backend type's code and everything else.

The registry, lifecycle, scheduler and API see only :class:`Backend` and :class:`BackendType`.
A backend sees its surroundings only through :class:`BackendHost`, so its code never reaches
into the registry, and a test can host one with a few lines.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from swarmkeeper.backends.autoscale_timings import AutoscaleTimings
from swarmkeeper.backends.demand import DemandBoard
from swarmkeeper.backends.settings import Schema, schema_of
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.tracked import Tracked
from swarmkeeper.backends.tuning import BackendTuning
from swarmkeeper.metrics import Metrics
from swarmkeeper.process.records import ProcessRecords
from swarmkeeper.types import BackendId, JSONObject

if TYPE_CHECKING:
    from swarmkeeper.backends.prompts import NoPrompts, PromptTarget
    from swarmkeeper.backends.record import BackendRecord

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


@dataclass
class PortCounter:
    """SwarmUI's process-wide port counter for self-started backends: incremented before use
    (so 7820 gives 7821 first), never reused, skipping ports that already have a listener."""

    last: int = 7820
    in_use: Callable[[int], bool] = field(default=lambda port: False)
    #: Ports never handed out: those of processes an earlier server left running (they may be
    #: adopted, and may not be listening at this moment).
    reserved: set[int] = field(default_factory=set)

    def take(self) -> int:
        self.last += 1
        while self.last in self.reserved or self.in_use(self.last):
            self.last += 1
        return self.last


#: The records of self-started processes that may outlive the server, in the data folder.
RECORDS_FILE = "backends-running.json"


@dataclass
class BackendServices:
    """What every backend shares: where data lives, who we are, the port counter, the waits, and
    the records of the processes they started."""

    data_dir: Path
    server_id: str
    ports: PortCounter = field(default_factory=PortCounter)
    #: Where backends, the lifecycle and the manager record facts (restarts: RestartCause.CRASH).
    metrics: Metrics = field(default_factory=Metrics)
    tuning: BackendTuning = field(default_factory=BackendTuning)
    #: The work waiting for backends (filled in by dispatch; read by the autoscaling backend).
    demand: DemandBoard = field(default_factory=DemandBoard)
    #: How often the autoscaling backend looks, pings its workers, and how long they get to end.
    autoscale: AutoscaleTimings = field(default_factory=AutoscaleTimings)
    #: Set when the program shutdown of a server started with --keep_backends begins (adoption.py):
    #: self-started processes are then left running, for the next start to adopt.
    keep_processes: bool = False
    #: Set when the program shutdown begins (manager.py): backends that may leave work running
    #: for the next start (an autoscaling backend's KeepWorkersOnExit) read it.
    exiting: bool = False
    #: Stopping the processes an earlier server left that no backend adopts (adoption.py); the
    #: server's stop waits for it.
    leftover_sweep: asyncio.Task[None] | None = None

    @cached_property
    def process_records(self) -> ProcessRecords:
        """This server's records of running self-started processes, read from disk on first use
        (their ports reserved at once, so no other backend is given one)."""
        records = ProcessRecords(Path(self.data_dir) / RECORDS_FILE)
        self.ports.reserved.update(record.port for record in records.all())
        return records


class BackendHost(Protocol[S_co]):
    """A backend's view of its registry entry."""

    @property
    def id(self) -> BackendId: ...
    @property
    def settings(self) -> S_co: ...
    @property
    def status(self) -> BackendStatus: ...
    @property
    def log(self) -> logging.Logger: ...
    @property
    def services(self) -> BackendServices: ...
    @property
    def title(self) -> str: ...
    @property
    def real(self) -> bool:
        """False for a non-real backend (spawned by a parent, never saved)."""
        ...

    @property
    def control(self) -> bool:
        """A non-real backend spawned to stand for a whole server, as a real one would (SwarmUI's
        IsSpecialControlled: an autoscaling backend's workers)."""
        ...

    def set_status(self, status: BackendStatus, reason: str = "") -> None: ...

    def changed(self) -> None: ...

    def spawn_child(self, type_id: str, settings: Any, title: str, *, control: bool = False) -> BackendRecord: ...

    async def remove_child(self, child: BackendRecord) -> None: ...


class Backend(abc.ABC, Generic[S]):
    """One backend instance. Its registry entry owns status, claims and settings; this object
    does the type's own work: bring it up, shut it down, free its memory.

    What the API shows of a backend is cached until it changes. The fields views read are
    :class:`Tracked` (assigning one is a change); a type that shows more (``features``, ``models``,
    ``extra_fields``) declares the state behind it ``Tracked`` too, or calls ``self.changed()``
    after changing it. Hold immutable values there: a change in place would go unseen.
    """

    #: Simultaneous generations it accepts; 0 means it never takes work.
    max_usages = Tracked(1)
    #: False for control instances (a Swarm-API parent) that never load models or generate.
    can_load_models = Tracked(True)
    #: The loaded model's name, if the type tracks one.
    current_model: Tracked[str | None] = Tracked(None)
    #: It can add backends for waiting work now (an autoscaling backend below its maximum): a
    #: request no backend can take waits for it instead of failing.
    grows = Tracked(False)

    def __init__(self, host: BackendHost[S]) -> None:
        self.host = host

    def changed(self) -> None:
        """Tell the views that something they show of this backend changed."""
        self.host.changed()

    @property
    def settings(self) -> S:
        return self.host.settings

    @property
    def features(self) -> frozenset[str]:
        """Feature ids this backend supports right now."""
        return frozenset()

    @property
    def models(self) -> Mapping[str, Sequence[str]]:
        """Model names per SwarmUI category (``Stable-Diffusion``, ``LoRA``, ...), if tracked."""
        return {}

    @abc.abstractmethod
    async def init(self) -> None:
        """Bring the backend up and set its status (``running``, or ``disabled`` when unconfigured).
        Raise BackendInitError to have the lifecycle retry, BackendConfigError to give up."""

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Release everything init made (connections, processes). Must be safe to call twice,
        and after an init that was cancelled half-way."""

    async def kill(self) -> None:
        """Shut down at once, not politely (RestartBackends ``force``): a type that runs processes
        kills their whole tree instead of asking them to stop. Same guarantees as shutdown()."""
        await self.shutdown()

    async def free_memory(self, system_ram: bool) -> bool:
        """Ask the backend to free VRAM (and system RAM too if asked); True if it did."""
        return False

    def prompt_target(self) -> PromptTarget | NoPrompts | None:
        """How dispatch sends ComfyUI prompts here (``backends/prompts.py``): None for a type that
        runs none. Called for every scheduling decision: keep it cheap (build the target once per
        address)."""
        return None

    async def refresh_models(self) -> None:
        """Re-read the model lists (``models``) from wherever they come from; TriggerRefresh calls
        it on every running backend. Types that track models override it."""

    def extra_fields(self, full_data: bool) -> JSONObject:
        """Extra keys for this backend's ListBackends entry (SwarmUI clients ignore extras)."""
        return {}


@dataclass(frozen=True)
class BackendType(Generic[S]):
    """A backend type, declared once: it drives ListBackendTypes, validation, and the FDS file."""

    id: str
    name: str
    description: str
    settings_class: type[S]
    factory: Callable[[BackendHost[S]], Backend[S]]
    #: Initialised concurrently (SwarmUI's CanLoadFast); others go one at a time through a queue.
    fast_load: bool = True
    #: Shown without "Show Advanced" in the web UI.
    standard: bool = False
    #: A text-to-image backend: its ListBackends entry carries can_load_models and current_model.
    t2i: bool = True

    @property
    def schema(self) -> Schema[S]:
        return schema_of(self.settings_class)

    def describe(self) -> JSONObject:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "settings": self.schema.describe(),
            "is_standard": self.standard,
        }


class TypeCatalog:
    """The registered backend types, in registration order (the order ListBackendTypes shows)."""

    def __init__(self, types: Sequence[BackendType[Any]] = ()) -> None:
        self._types: dict[str, BackendType[Any]] = {}
        for backend_type in types:
            self.register(backend_type)

    def register(self, backend_type: BackendType[Any]) -> None:
        if backend_type.id in self._types:
            raise ValueError(f"Backend type '{backend_type.id}' is already registered.")
        self._types[backend_type.id] = backend_type

    def get(self, type_id: str) -> BackendType[Any] | None:
        return self._types.get(type_id)

    def __iter__(self) -> Any:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)
