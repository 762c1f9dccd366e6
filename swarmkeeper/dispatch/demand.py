"""The waiting work, as backends may see it (backends/demand.py): how many requests wait for a
slot, and how many of those no running backend can serve at all."""

from __future__ import annotations

from swarmkeeper.backends.demand import Demand
from swarmkeeper.dispatch.scheduler import Scheduler
from swarmkeeper.dispatch.select import refused, usable


def demand_of(scheduler: Scheduler) -> Demand:
    pending = scheduler.pending
    if not pending:
        return Demand()
    candidates = [record for record in scheduler.registry.all() if record.type.t2i and usable(record)]
    unmet = sum(1 for request in pending if not any(refused(request, record) is None for record in candidates))
    return Demand(waiting=len(pending), unmet=unmet)
