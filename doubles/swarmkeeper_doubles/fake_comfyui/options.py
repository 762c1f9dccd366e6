"""How one fake behaves: FakeOptions, the whole-server faults, and ``--fault`` values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """Whole-server misbehaviours."""

    HANG = "hang"
    GARBAGE = "garbage"
    CLOSE = "close"


@dataclass(frozen=True)
class FakeOptions:
    """How one fake behaves. ``models`` fills ``/models/<folder>`` (e.g. ``{"checkpoints": [...]}``)."""

    job_seconds: float = 0.1
    fault: Fault | None = None
    crash_after: int | None = None
    slow_object_info: float = 0.0
    models: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fault is not None:
            object.__setattr__(self, "fault", Fault(self.fault))
        if self.job_seconds < 0 or self.slow_object_info < 0:
            raise ValueError("job_seconds and slow_object_info must not be negative")
        if self.crash_after is not None and self.crash_after < 1:
            raise ValueError("crash_after counts prompts from 1")


def parse_fault(text: str) -> dict[str, Any]:
    """``--fault`` values as FakeOptions fields: ``hang``, ``crash_after=2``, ``slow_object_info=5``."""
    name, _, value = text.partition("=")
    if name in {f.value for f in Fault}:
        return {"fault": Fault(name)}
    if name == "crash_after":
        return {"crash_after": int(value)}
    if name == "slow_object_info":
        return {"slow_object_info": float(value or 30)}
    raise ValueError(f"unknown fault {text!r}")
