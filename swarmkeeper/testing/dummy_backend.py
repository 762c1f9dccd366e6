"""A backend type for tests: a real implementation of the Backend interface that does nothing
but what its settings tell it to (succeed, fail, hang), and records what was asked of it.

Load it into a server with ``--backend_types swarmkeeper.testing.dummy_backend``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.base import Backend, BackendType
from swarmkeeper.backends.settings import boolean, decimal, dropdown, integer, text
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.exceptions import BackendConfigError, BackendInitError


@dataclass(frozen=True)
class DummySettings:
    Address: str = text("", "Anything; blank leaves the backend unconfigured (disabled).", placeholder="dummy")
    Token: str = text("", "A secret, never shown back.", secret=True)
    OverQueue: int = integer(1, "How many extra requests may queue up on this backend.\nmax_usages = 1 + this.")
    Ratio: float = decimal(0.5, "A decimal setting.")
    Flag: bool = boolean(False, "A boolean setting.")
    Mode: str = dropdown("ok", "What init does.", [
        ("ok", "Succeeds"), ("fail", "Fails every time"), ("hang", "Never finishes"),
        ("config", "Settings can never work"), ("nofree", "Succeeds, but cannot free memory"),
        ("freeerror", "Succeeds, but freeing memory raises"),
    ])
    InitSeconds: float = decimal(0, "How long init takes, in seconds.")


class DummyBackend(Backend[DummySettings]):
    def __init__(self, host: Any) -> None:
        super().__init__(host)
        self.inits = 0
        self.shutdowns = 0
        self.freed: list[bool] = []

    @property
    def features(self) -> frozenset[str]:
        return frozenset({"dummy"}) if self.host.status is BackendStatus.RUNNING else frozenset()

    async def init(self) -> None:
        settings = self.settings
        self.inits += 1
        self.max_usages = max(0, 1 + settings.OverQueue)
        if not settings.Address:
            self.host.set_status(BackendStatus.DISABLED, "No address is set.")
            return
        self.host.set_status(BackendStatus.LOADING, "Starting...")
        self.host.log.info("Dummy backend starting (%s, mode %s)", settings.Address, settings.Mode)
        await asyncio.sleep(settings.InitSeconds)
        if settings.Mode == "fail":
            raise BackendInitError(f"Dummy backend at {settings.Address} failed to start")
        if settings.Mode == "config":
            raise BackendConfigError("Dummy backend settings can never work")
        if settings.Mode == "hang":
            await asyncio.Event().wait()
        self.host.set_status(BackendStatus.RUNNING, "")

    async def shutdown(self) -> None:
        self.shutdowns += 1

    async def free_memory(self, system_ram: bool) -> bool:
        self.freed.append(system_ram)
        if self.settings.Mode == "freeerror":
            raise RuntimeError("free failed")
        return self.settings.Mode != "nofree"


DUMMY = BackendType(
    id="swarmkeeper_dummy", name="Dummy (tests)", description="A backend that only pretends, for tests.",
    settings_class=DummySettings, factory=DummyBackend, fast_load=True, standard=False)
DUMMY_SEQUENTIAL = BackendType(
    id="swarmkeeper_dummy_sequential", name="Dummy, one at a time (tests)",
    description="A pretend backend that initialises through the sequential queue.",
    settings_class=DummySettings, factory=DummyBackend, fast_load=False, standard=False)

BACKEND_TYPES = [DUMMY, DUMMY_SEQUENTIAL]
