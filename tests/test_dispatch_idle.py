"""The idle memory policy: per backend, VRAM after ClearVRAMAfterMinutes and system RAM after
ClearSystemRAMAfterMinutes of no generation, once per idle period; -1 disables."""

from __future__ import annotations

from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.config import BackendsSettings
from swarmkeeper.dispatch.idle import Clear, IdleLimits, IdlePolicy, clear
from tests.dispatch_support import fake_record


def test_limits_come_from_settings_and_minus_one_disables() -> None:
    assert IdleLimits.of(BackendsSettings()) == IdleLimits(vram=600.0, system_ram=3600.0)
    assert IdleLimits.of(BackendsSettings(ClearVRAMAfterMinutes=-1, ClearSystemRAMAfterMinutes=0.5)) == \
        IdleLimits(vram=None, system_ram=30.0)


def test_each_backend_is_cleared_after_its_own_idle_time_once_per_idle_period() -> None:
    policy, limits = IdlePolicy(), IdleLimits(vram=60.0, system_ram=300.0)
    quiet, busy, fresh = fake_record(0), fake_record(1), fake_record(2)
    quiet.last_used, busy.last_used, fresh.last_used = 1000.0, 1000.0, 1050.0
    busy.usages = 1
    records = [quiet, busy, fresh]
    assert policy.due(records, limits, 1059.0) == []
    assert policy.due(records, limits, 1060.0) == [(quiet, Clear.VRAM)]
    assert policy.due(records, limits, 1100.0) == []  # once per idle period
    assert policy.due(records, limits, 1110.0) == [(fresh, Clear.VRAM)]
    assert policy.due(records, limits, 1300.0) == [(quiet, Clear.SYSTEM_RAM)]
    quiet.last_used = 1400.0  # used again: a new idle period
    assert policy.due(records, limits, 1460.0) == [(quiet, Clear.VRAM), (fresh, Clear.SYSTEM_RAM)]


def test_never_used_stopped_and_disabled_limits_are_left_alone() -> None:
    never, errored = fake_record(0), fake_record(1, status=BackendStatus.ERRORED)
    errored.last_used = 0.0
    assert IdlePolicy().due([never, errored], IdleLimits(vram=1.0, system_ram=1.0), 10_000.0) == []
    used = fake_record(2)
    used.last_used = 0.0
    assert IdlePolicy().due([used], IdleLimits(vram=None, system_ram=None), 10_000.0) == []


async def test_a_cleared_backend_forgets_its_model_and_a_failing_one_is_only_logged() -> None:
    freed = fake_record(0, model="sd15")

    async def yes(system_ram: bool) -> bool:
        return True

    async def broken(system_ram: bool) -> bool:
        raise RuntimeError("unreachable")

    freed.backend.free_memory = yes  # type: ignore[method-assign]
    await clear(freed, Clear.VRAM)
    assert freed.backend.current_model is None
    failing = fake_record(1, model="sd15")
    failing.backend.free_memory = broken  # type: ignore[method-assign]
    await clear(failing, Clear.SYSTEM_RAM)
    assert failing.backend.current_model == "sd15"
