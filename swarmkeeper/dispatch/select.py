"""One request against the backends, once: pure functions over registry records (reference §7.2).

Candidates are text-to-image backends that are enabled, running, not reserved and take work
(``max_usages > 0``). Every other backend, and every candidate the request's filter refuses, is
listed with the reason, so a request that cannot be served says why for each backend. A request
that some backend could serve but all such are busy waits; so does one that a loading backend
might serve once it is up.
"""

from __future__ import annotations

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

_LOADING = (BackendStatus.WAITING, BackendStatus.LOADING)


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


def refused(request: Request, record: BackendRecord) -> Refusal | None:
    """Why this request may not go to this (available) backend, or None."""
    if request.pin is not None and request.pin not in (record.id, record.parent.id if record.parent else None):
        return Refusal(f"not the requested backend #{request.pin}")
    if record.id in request.avoid:
        return Refusal("already failed this request")
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


def able(request: Request, records: Iterable[BackendRecord]) -> tuple[list[BackendRecord], Decision | None]:
    """The backends that could serve the request now (busy or not), or the decision when none can."""
    refusals: list[tuple[BackendRecord, Refusal]] = []
    passing: list[BackendRecord] = []
    candidates = waiting = 0
    for record in records:
        if not record.type.t2i:
            continue
        refusal = unavailable(record)
        if refusal is None:
            candidates += 1
            refusal = refused(request, record)
        if refusal is None:
            passing.append(record)
            continue
        waiting += refusal.transient
        refusals.append((record, refusal))
    if passing:
        return passing, None
    if waiting:
        return [], Wait("a backend that may serve it is still loading")
    return [], failure(NO_MATCH if candidates else NO_BACKENDS, refusals)


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


def choose(request: Request, passing: Sequence[BackendRecord], now: float, policy: Policy) -> Decision:
    """Among the backends able to serve it, the one that takes the request now (or wait)."""
    available = [record for record in passing if not record.saturated]
    if not available:
        return Wait("every backend able to serve it is busy")
    model = request.model
    if policy.strategy is Strategy.LEAST_BUSY:
        best = min(available, key=lambda r: (r.usages, not (model and holds(r, model)), r.id))
        return Assign(best, loads_model=bool(model) and not holds(best, model or ""))
    by_claims = sorted(available, key=lambda record: record.usages)  # stable: lower id first on ties
    if model is None:
        return Assign(by_claims[0])
    loaded = [record for record in by_claims if holds(record, model)]
    if loaded:
        return Assign(loaded[0])
    busy_holder = any(holds(record, model) for record in passing)
    if busy_holder and len(available) > 1 and now - request.created < policy.model_spread_delay:
        return Wait("waiting briefly for the busy backend that holds the model")
    return Assign(pick_loader(by_claims, policy.load_order), loads_model=True)


def select(request: Request, records: Iterable[BackendRecord], now: float, policy: Policy) -> Decision:
    """The whole decision for one request."""
    passing, decided = able(request, records)
    if decided is not None:
        return decided
    return choose(request, passing, now, policy)


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
