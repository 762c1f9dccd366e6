"""One request against the backends, once: pure functions over registry records (reference §7.2).

Candidates are text-to-image backends that are enabled, running, not reserved and take work
(``max_usages > 0``). Every other backend, and every candidate the request's filter refuses, is
listed with the reason, so a request that cannot be served says why for each backend. A request
that some backend could serve but all such are busy waits; so does one that a loading backend
might serve once it is up.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.dispatch.requests import (
    NO_BACKENDS,
    NO_MATCH,
    REFUSED_INTRO,
    Assign,
    Decision,
    Fail,
    LoadOrder,
    Policy,
    Refusal,
    Request,
    Strategy,
    Wait,
)
from swarmkeeper.types import BackendId

_LOADING = (BackendStatus.WAITING, BackendStatus.LOADING)
ALREADY_FAILED = Refusal("already failed this request")
BUSY = Wait("every backend able to serve it is busy")
STILL_LOADING = Wait("a backend that may serve it is still loading")
HOLDER_BUSY = Wait("waiting briefly for the busy backend that holds the model")

# Deciding runs on every release and every new request, so the common paths below only test
# booleans; the reasons (formatted text) are built only for a request that fails.


def usable(record: BackendRecord) -> bool:
    """A candidate at all, whatever the request (``unavailable(record) is None``, without the reason)."""
    return (record.enabled and record.status is BackendStatus.RUNNING and not record.shutdown_reserved
            and record.reservations <= 0 and record.max_usages > 0)


def has_free_slot(record: BackendRecord) -> bool:
    """A text-to-image candidate that could take work now (a busy one, the most common under load, is
    ruled out first)."""
    return not record.saturated and record.type.t2i and usable(record)


def may_come_back(record: BackendRecord) -> bool:
    """An unusable backend that may become usable by itself (``unavailable(record).transient``), or
    one that may add backends (an autoscaling backend below its maximum)."""
    if not record.enabled:
        return False
    if record.backend.grows:
        return True
    if record.status is not BackendStatus.RUNNING:
        return record.status in _LOADING
    return record.shutdown_reserved or record.reservations > 0


def unavailable(record: BackendRecord) -> Refusal | None:
    """Why a backend is no candidate at all (whatever the request), or None."""
    if not record.enabled:
        return Refusal("disabled")
    if record.status is not BackendStatus.RUNNING:
        detail = f": {record.status_reason}" if record.status_reason else ""
        return Refusal(f"{record.status}{detail}", transient=record.status in _LOADING)
    if record.shutdown_reserved:
        return Refusal("shutting down", transient=True)
    if record.reservations > 0:
        return Refusal("reserved for exclusive use", transient=True)
    if record.max_usages <= 0:
        return Refusal("takes no work (max_usages is 0)")
    return None


@functools.lru_cache(maxsize=256)
def not_pinned(pin: BackendId) -> Refusal:
    return Refusal(f"not the requested backend #{pin}")


def refused(request: Request, record: BackendRecord) -> Refusal | None:
    """Why this request may not go to this (available) backend, or None."""
    if request.pin is not None and request.pin not in (record.id, record.parent.id if record.parent else None):
        return not_pinned(request.pin)
    if record.id in request.avoid:
        return ALREADY_FAILED
    return request.check(record)


def describe(record: BackendRecord, refusal: Refusal) -> str:
    title = f" ({record.title})" if record.title else ""
    return f"backend #{record.id}{title}: {refusal.reason}"


def failure(intro: str, refusals: Sequence[tuple[BackendRecord, Refusal]]) -> Fail:
    """SwarmUI's text, then one line per refused backend."""
    if not refusals:
        return Fail(intro)
    lines = "".join(f"\n- {describe(record, refusal)}" for record, refusal in refusals)
    return Fail(f"{intro}{REFUSED_INTRO}{lines}")


def unserved(request: Request, records: Sequence[BackendRecord]) -> Decision:
    """No backend with a free slot takes the request: it waits when some backend may take it later
    (busy, or still loading), else it fails with every backend's reason."""
    loading = False
    for record in records:
        if not record.type.t2i:
            continue
        if not usable(record):
            loading = loading or may_come_back(record)
            continue
        refusal = refused(request, record)
        if refusal is None:
            return BUSY
        if refusal.final:
            return Fail(refusal.reason)
        loading = loading or refusal.transient
    return STILL_LOADING if loading else explain(request, records)


def explain(request: Request, records: Iterable[BackendRecord]) -> Fail:
    """The failure of a request no backend can serve, with each backend's reason."""
    refusals: list[tuple[BackendRecord, Refusal]] = []
    candidates = 0
    for record in records:
        if not record.type.t2i:
            continue
        refusal = unavailable(record)
        if refusal is None:
            candidates += 1
            refusal = refused(request, record)
        if refusal is not None:
            refusals.append((record, refusal))
    return failure(NO_MATCH if candidates else NO_BACKENDS, refusals)


def holds(record: BackendRecord, model: str) -> bool:
    """The backend has this model loaded (as named, or with ``.safetensors`` added or removed)."""
    current = record.backend.current_model
    return current is not None and model in (current, current + ".safetensors", current.removesuffix(".safetensors"))


def pick_loader(available: Sequence[BackendRecord], order: LoadOrder) -> BackendRecord:
    """Which free backend loads a model: an idle one if any, then by ModelLoadOrderPreference."""
    idle = [record for record in available if record.usages == 0] or list(available)
    if order is LoadOrder.FIRST_FREE:
        return idle[0]
    return min(idle, key=lambda record: (record.last_used is not None, record.last_used or 0.0))


def busy_holder(request: Request, records: Sequence[BackendRecord], model: str) -> bool:
    """A backend able to serve the request, holding the model, has no free slot now."""
    return any(record.type.t2i and record.saturated and holds(record, model) and usable(record)
               and refused(request, record) is None for record in records)


def choose(request: Request, available: Sequence[BackendRecord], records: Sequence[BackendRecord], now: float,
           policy: Policy) -> Decision:
    """Among the backends with a free slot that may serve it (in id order), the one that takes the
    request now (or wait for a busy one that holds its model)."""
    model = request.model
    if policy.strategy is Strategy.LEAST_BUSY:
        best = min(available, key=lambda r: (r.usages, not (model and holds(r, model)), r.id))
        return Assign(best, loads_model=bool(model) and not holds(best, model or ""))
    if model is None:
        return Assign(min(available, key=lambda record: record.usages))  # the lower id first on ties
    by_claims = sorted(available, key=lambda record: record.usages)  # stable: lower id first on ties
    loaded = [record for record in by_claims if holds(record, model)]
    if loaded:
        return Assign(loaded[0])
    if len(available) > 1 and now - request.created < policy.model_spread_delay and \
            busy_holder(request, records, model):
        return HOLDER_BUSY
    return Assign(pick_loader(by_claims, policy.load_order), loads_model=True)


def select(request: Request, records: Sequence[BackendRecord], now: float, policy: Policy,
           free: Sequence[BackendRecord] | None = None) -> Decision:
    """The whole decision for one request (``records`` in id order; ``free``, when known, those of
    them with a free slot, in id order). The backends are looked at in id order until one is as good
    as any could be (no claim on it, and holding the model if the request names one): the common
    decision costs a few backends, not every free one."""
    candidates = (record for record in records if has_free_slot(record)) if free is None else free
    available: list[BackendRecord] = []
    model = request.model
    for record in candidates:
        if (refusal := refused(request, record)) is not None:
            if refusal.final:
                return Fail(refusal.reason)
            continue
        if record.usages <= 0 and (model is None or holds(record, model)):
            return Assign(record)  # what choose() would pick: the first in id order of the best kind
        available.append(record)
    if not available:
        return unserved(request, records)
    return choose(request, available, records, now, policy)


def refusal_lines(request: Request, records: Iterable[BackendRecord]) -> list[str]:
    """Every backend that cannot take the request now and why (saturated ones included), for the
    timeout text."""
    lines = []
    for record in records:
        if not record.type.t2i:
            continue
        refusal = unavailable(record) or refused(request, record)
        if refusal is None and record.saturated:
            refusal = Refusal(f"saturated ({record.usages} of {record.max_usages} jobs)")
        if refusal is not None:
            lines.append(describe(record, refusal))
    return lines
