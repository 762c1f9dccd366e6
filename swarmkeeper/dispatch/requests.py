"""The vocabulary of dispatch: a request for a backend, the policy requests are decided by, and
what one decision can be. No logic beyond normalising inputs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from swarmkeeper.types import BackendId

if TYPE_CHECKING:
    from swarmkeeper.backends.record import BackendRecord
    from swarmkeeper.config import BackendsSettings

#: SwarmUI's failure texts (reference §7.2, §7.4), shown as they are.
NO_BACKENDS = "No backends available!"
NO_MATCH = "No backends match the settings of the request given!"
REFUSED_INTRO = " Backends refused for the following reason(s):"
TIMEOUT = "Timeout! All backends are occupied with other tasks."
STALLED = "No backend has responded in {minutes} minutes."

#: A capability check: why this backend cannot serve the request, or None when it can.
Check = Callable[["BackendRecord"], "Refusal | None"]


class Strategy(StrEnum):
    """Which available backend takes a request (``Backends.SchedulingStrategy``)."""

    SWARMUI = "swarmui"  # SwarmUI's: a backend holding the model first, then fewest claims, then lower id
    LEAST_BUSY = "least_busy"  # fewest jobs in flight first, then one holding the model, then lower id


class LoadOrder(StrEnum):
    """``Backends.ModelLoadOrderPreference``: which backend loads a model nobody has loaded."""

    LAST_USED = "last_used"  # the least recently used one
    FIRST_FREE = "first_free"  # the first in list order


@dataclass(frozen=True)
class Refusal:
    """Why a backend cannot take a request. ``transient`` refusals (a chained server whose node list
    is not known yet) make the request wait instead of failing; a ``final`` one is the request's own
    fault (a prompt that failed validation once a node list was known): it fails at once, wherever
    it waits."""

    reason: str
    transient: bool = False
    final: bool = False


@dataclass(frozen=True)
class Policy:
    """The server settings that steer the scheduler, in seconds."""

    strategy: Strategy = Strategy.SWARMUI
    load_order: LoadOrder = LoadOrder.LAST_USED
    #: PerRequestTimeoutMinutes: longest wait for a backend, per request.
    request_timeout: float = 10080 * 60.0
    #: MaxTimeoutMinutes: requests pending and none served for this long is a stall.
    stall_timeout: float = 120 * 60.0
    #: ForceRestartOnTimeout: on a stall, restart every backend instead of failing the requests.
    restart_on_stall: bool = False
    #: How long a request for a model waits for the busy backend holding it before loading it on
    #: another free one (SwarmUI's model pressure age).
    model_spread_delay: float = 1.5
    #: Seconds between full passes over every waiting request (SwarmUI's loop sleeps up to 1 s).
    full_pass_interval: float = 1.0

    @classmethod
    def of(cls, settings: BackendsSettings) -> Policy:
        """From Settings.fds' Backends section (unknown names fall back to the defaults). The
        scheduler asks on every pass; the settings are frozen, so the last answer is kept."""
        global _last_policy
        if _last_policy is not None and _last_policy[0] is settings:
            return _last_policy[1]
        strategy = settings.SchedulingStrategy if settings.SchedulingStrategy in _STRATEGIES else Strategy.SWARMUI
        order = settings.ModelLoadOrderPreference
        policy = cls(strategy=Strategy(strategy),
                     load_order=LoadOrder(order) if order in _LOAD_ORDERS else LoadOrder.LAST_USED,
                     request_timeout=max(settings.PerRequestTimeoutMinutes, 0) * 60.0,
                     stall_timeout=max(settings.MaxTimeoutMinutes, 0) * 60.0,
                     restart_on_stall=settings.ForceRestartOnTimeout)
        _last_policy = (settings, policy)
        return policy


_STRATEGIES = frozenset(Strategy)
_LOAD_ORDERS = frozenset(LoadOrder)
_last_policy: tuple[BackendsSettings, Policy] | None = None


@dataclass(eq=False)
class Request:
    """One wait for a backend slot. The scheduler fills in the fields after ``check``."""

    #: What the request needs of a backend (node classes, models, features), as a filter.
    check: Check
    #: The model the work loads, if any: backends already holding it are preferred.
    model: str | None = None
    #: The SwarmUI session it belongs to (None for pool prompts and session-less calls).
    session: str | None = None
    #: Only this backend, or the children of this backend (SwarmUI's "exact backend id").
    pin: BackendId | None = None
    #: Queue ahead of everything that was not queued at the front (ComfyUI's ``front``).
    front: bool = False
    #: Backends that already failed this work: never chosen again for it.
    avoid: set[BackendId] = field(default_factory=set)
    created: float = 0.0
    seq: int = 0
    future: asyncio.Future[Grant] | None = field(default=None, repr=False)
    #: Called with the grant in the scheduler's pass that makes it, before anything else runs (so
    #: the work can be sent from the release that freed the slot). It must not raise.
    on_grant: Callable[[Grant], None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Grant:
    """A claimed backend slot; hand it back with ``Scheduler.release``."""

    record: BackendRecord
    #: The work will load its model there (no backend held it).
    loads_model: bool = False
    #: Seconds the request waited.
    waited: float = 0.0


@dataclass(frozen=True)
class Assign:
    record: BackendRecord
    loads_model: bool = False


@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass(frozen=True)
class Fail:
    message: str


Decision = Assign | Wait | Fail


class NoBackend(Exception):
    """A request could not be given a backend; ``message`` is SwarmUI's text (with the reasons)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
