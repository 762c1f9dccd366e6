"""Fake records and a fake clock for the dispatch tests (no network, no real time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swarmkeeper.backends.base import Backend, BackendServices, BackendType
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.status import BackendStatus


@dataclass(frozen=True)
class NoSettings:
    pass


class FakeBackend(Backend[NoSettings]):
    async def init(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


FAKE = BackendType(id="fake", name="Fake", description="", settings_class=NoSettings, factory=FakeBackend)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_record(backend_id: int, *, max_usages: int = 1, status: BackendStatus = BackendStatus.RUNNING,
                enabled: bool = True, model: str | None = None, title: str = "") -> BackendRecord:
    record = BackendRecord(id=backend_id, type=FAKE, settings=NoSettings(),
                           services=BackendServices(data_dir=Path("."), server_id="test"), pool=None,  # type: ignore[arg-type]
                           on_change=lambda record: None, title=title, enabled=enabled)
    record.backend.max_usages = max_usages
    record.backend.current_model = model
    record.status = status
    return record
