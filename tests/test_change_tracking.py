"""Change tracking a reader can see: every field of a backend's record, and every field of a
backend that ListBackends shows, is Tracked (backends/tracked.py): assigning it moves the record's
version, which the ListBackends cache follows. No field can change unseen: none is left public
and unguarded, and none may hold a container that could be changed in place."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from swarmkeeper.api.views import ListingCache
from swarmkeeper.backends.base import Backend, BackendServices, BackendType
from swarmkeeper.backends.builtin import BUILTIN_TYPES
from swarmkeeper.backends.record import BackendRecord, ChangeClock
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.tracked import Tracked, tracked_fields
from swarmkeeper.testing.dummy_backend import DUMMY
from swarmkeeper.types import BackendId
from tests.servers import APIClient, in_process, test_config

TYPES = [*BUILTIN_TYPES, DUMMY]

#: Public attributes of backends that no view reads, and why; any other must be Tracked.
NOT_SHOWN: dict[str, set[str]] = {
    "Backend": {"host"},  # the record itself
    "SwarmParent": {"children"},  # records of their own
    "SwarmChild": {"client", "mirrored"},  # the connection; whether the status mirrors the parent's
    "ComfyUIAPIBackend": {"client", "monitor", "object_info"},  # ListBackends shows `info`, parsed from it
    "ComfyUISelfStartBackend": {"client", "monitor", "object_info", "port"},  # the port is in api_url
    "DummyBackend": {"freed", "inits", "shutdowns"},  # counters the tests read
    # its own bookkeeping: ListBackends shows none of it (its workers are records of their own)
    "AutoScaler": {"clock", "timings", "provider", "connection", "limits", "workers", "launching", "launches",
                   "next_start", "retry_after", "next_stop", "last_ping", "last_failure"},
}


class NoChildren:
    def spawn_child(self, parent: BackendRecord, type_id: str, settings: Any, title: str) -> BackendRecord:
        raise AssertionError("not in these tests")

    async def remove_child(self, child: BackendRecord) -> None:
        raise AssertionError("not in these tests")


def record_of(backend_type: BackendType[Any], *, real: bool = True) -> BackendRecord:
    return BackendRecord(id=BackendId(1), type=backend_type, settings=backend_type.schema.defaults(),
                         services=BackendServices(data_dir=Path("unused"), server_id="test"), pool=NoChildren(),
                         on_change=lambda record: None, real=real)


def another(value: Any, name: str) -> Any:
    """A value of the same kind as ``value``, different from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, BackendStatus):
        return BackendStatus.ERRORED if value is not BackendStatus.ERRORED else BackendStatus.RUNNING
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value)  # an equal copy is still an assignment, so still a change
    return object()  # None or an object: any other object


def test_every_record_field_is_tracked_or_read_only() -> None:
    record = record_of(DUMMY)
    tracked = tracked_fields(BackendRecord)
    unguarded = [name for name in vars(record) if not name.startswith("_") and name not in tracked]
    assert unguarded == []
    for name, value in vars(BackendRecord).items():
        if isinstance(value, property):
            assert value.fset is None, f"{name} is a property with a setter that is not Tracked"


@pytest.mark.parametrize("name", sorted(tracked_fields(BackendRecord)))
def test_assigning_any_record_field_moves_the_version(name: str) -> None:
    record = record_of(DUMMY)
    before, ticks = record.version, ChangeClock.ticks
    setattr(record, name, another(getattr(record, name), name))
    assert record.version > before
    assert ChangeClock.ticks > ticks


def test_the_record_methods_move_the_version() -> None:
    record = record_of(DUMMY)
    for change in (lambda: record.set_status(BackendStatus.LOADING, "Loading"), record.touch, record.changed):
        before = record.version
        change()
        assert record.version > before


@pytest.mark.parametrize(("backend_type", "real"), [(backend_type, real) for backend_type in TYPES
                                                    for real in (True, False)],
                         ids=lambda value: getattr(value, "id", str(value)))
def test_every_public_backend_field_is_tracked_or_never_shown(backend_type: BackendType[Any], real: bool) -> None:
    backend = record_of(backend_type, real=real).backend
    tracked = tracked_fields(type(backend))
    allowed = set().union(*(NOT_SHOWN.get(klass.__name__, set()) for klass in type(backend).__mro__))
    unguarded = [name for name in vars(backend) if not name.startswith("_") and name not in tracked.keys() | allowed]
    assert unguarded == []


@pytest.mark.parametrize("backend_type", TYPES, ids=lambda backend_type: backend_type.id)
def test_assigning_any_tracked_backend_field_moves_the_version(backend_type: BackendType[Any]) -> None:
    for real in (True, False):
        record = record_of(backend_type, real=real)
        backend = record.backend
        for name in tracked_fields(type(backend)):
            before = record.version
            setattr(backend, name, another(getattr(backend, name), name))
            assert record.version > before, name


def test_tracked_fields_refuse_what_could_change_in_place() -> None:
    record = record_of(DUMMY)
    backend: Backend[Any] = record.backend
    for value in ([], {}, set(), bytearray()):
        with pytest.raises(TypeError, match="immutable"):
            record.settings = value
        with pytest.raises(TypeError, match="immutable"):
            backend.current_model = value  # type: ignore[assignment]


def test_a_tracked_default_is_shared_only_when_immutable() -> None:
    for klass in {type(record_of(backend_type, real=real).backend) for backend_type in TYPES for real in (True, False)}:
        for name, field in tracked_fields(klass).items():
            assert isinstance(field, Tracked)
            assert not isinstance(field.default, (list, dict, set, bytearray)), f"{klass.__name__}.{name}"


#: Figures that move with the clock, not with changes (two renders may straddle a second).
CLOCK = ("seconds_since_used", "time_since_used")


def without_clock(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: {name: value for name, value in entry.items() if name not in CLOCK} for key, entry in answer.items()}


async def same_as_fresh(api: APIClient) -> None:
    """ListBackends (answered from the server's cache) says what a cache seeing it for the first time says."""
    assert api.services is not None
    fresh = ListingCache().render(api.services.registry.all(), nonreal=True, full_data=True, editor=True)
    assert without_clock(await api.ok("ListBackends", nonreal=True, full_data=True)) == without_clock(json.loads(fresh))


async def test_the_cached_answer_always_equals_a_fresh_one(data_dir: Path) -> None:
    """Changes through every public path (the API, the registry, the backend's own fields): the
    server's cached ListBackends answer is what a cache that never saw it before says."""
    async with in_process(test_config(data_dir)) as api:
        assert api.services is not None
        services = api.services
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        await same_as_fresh(api)
        await api.ok("EditBackend", backend_id=0, title="a", settings={"Address": "here"})
        await api.wait_status(0, "running")
        await same_as_fresh(api)
        record = services.registry.get(0)
        assert record is not None
        services.registry.claim(record)
        await same_as_fresh(api)
        record.jobs_queued += 1
        await same_as_fresh(api)
        record.backend.current_model = "sd.safetensors"
        await same_as_fresh(api)
        record.backend.max_usages = 4
        await same_as_fresh(api)
        services.registry.release(record)
        await same_as_fresh(api)
        await api.ok("ToggleBackend", backend_id=0, enabled=False)
        await api.wait_status(0, "disabled")
        await same_as_fresh(api)
