"""What backends may know of the work waiting for them: how many requests wait, and how many of
those no running backend can serve. Dispatch (a layer above) fills it in; an autoscaling backend
reads it to decide when to add workers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    #: Requests waiting for a backend slot.
    waiting: int = 0
    #: Of those, how many no running backend can serve (a model or feature nobody has, or no backend).
    unmet: int = 0


class DemandBoard:
    """Where the waiting work is read from; dispatch sets :attr:`source` when it starts."""

    def __init__(self) -> None:
        self.source: Callable[[], Demand] = Demand

    def read(self) -> Demand:
        return self.source()
