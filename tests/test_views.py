"""The ListBackends fast path must say exactly what backend_json says, and notice every change."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from swarmkeeper.api.views import ListingCache, backend_json
from swarmkeeper.backends.record import BackendRecord, ChangeClock
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.types import RawJSON
from tests.servers import APIClient, in_process, test_config


def rendered(cache: ListingCache, api: APIClient, **options: bool) -> dict:
    assert api.services is not None
    return json.loads(cache.render(api.services.registry.all(), nonreal=options.get("nonreal", True),
                                   full_data=options.get("full_data", False), editor=options.get("editor", True)))


async def one_disabled_dummy(api: APIClient) -> BackendRecord:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.wait_status(0, "disabled")
    assert api.services is not None
    record = api.services.registry.get(0)
    assert record is not None
    return record


def answer(cache: ListingCache, api: APIClient, *, full_data: bool = False) -> RawJSON:
    assert api.services is not None
    return cache.render(api.services.registry.all(), nonreal=False, full_data=full_data, editor=True)


async def test_listing_equals_backend_json_key_for_key(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        for _ in range(3):
            await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        await api.ok("EditBackend", backend_id=1, title="x", settings={"Address": "a", "Token": "t"})
        await api.wait_status(1, "running")
        assert api.services is not None
        registry = api.services.registry
        record = registry.get(1)
        assert record is not None
        registry.claim(record)
        for full_data, editor in ((False, True), (True, True), (False, False)):
            listing = rendered(ListingCache(), api, full_data=full_data, editor=editor)
            expected = {str(r.id): backend_json(r, full_data=full_data, editor=editor) for r in registry.all()}
            assert listing == expected
            assert [list(entry) for entry in listing.values()] == [list(entry) for entry in expected.values()]


async def test_cache_notices_every_kind_of_change(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        record = await one_disabled_dummy(api)
        assert api.services is not None
        cache = ListingCache()
        rendered(cache, api)
        record.set_status(BackendStatus.ERRORED, "boom")
        assert rendered(cache, api)["0"]["status_reason"] == "boom"
        record.backend.max_usages = 7  # the backend's own state
        assert rendered(cache, api)["0"]["max_usages"] == 7
        record.backend.current_model = "sd.safetensors"
        assert rendered(cache, api, full_data=True)["0"]["current_model"] == "sd.safetensors"
        api.services.registry.claim(record)
        assert rendered(cache, api)["0"]["usages"] == 1
        assert rendered(cache, api)["0"]["time_since_used"] == "0 seconds from now"
        record.last_used = (record.last_used or 0) - 3
        assert rendered(cache, api)["0"]["time_since_used"] == "3 seconds ago"


async def test_nonreal_filter(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        assert api.services is not None
        parent = api.services.registry.get(0)
        assert parent is not None
        child = parent.spawn_child("swarmkeeper_dummy", parent.settings, "child")
        assert child.id == -1 and not child.real
        assert list(await api.ok("ListBackends")) == ["0"]
        listing = await api.ok("ListBackends", nonreal=True)
        assert list(listing) == ["-1", "0"] and listing["-1"]["parent_id"] == 0
        await api.ok("DeleteBackend", backend_id=0)
        assert await api.ok("ListBackends", nonreal=True) == {}


async def test_whole_listing_reused_until_a_record_or_the_membership_changes(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        record = await one_disabled_dummy(api)
        cache = ListingCache()
        first = answer(cache, api)
        assert answer(cache, api) is first
        assert answer(cache, api, full_data=True) is not first  # its own answer
        record.title = "renamed"
        changed = answer(cache, api)
        assert changed is not first and json.loads(changed)["0"]["title"] == "renamed"
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        assert list(json.loads(answer(cache, api))) == ["0", "1"]
        await api.ok("DeleteBackend", backend_id=1)
        assert list(json.loads(answer(cache, api))) == ["0"]


async def test_whole_listing_renewed_when_a_time_since_used_figure_moves(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        record = await one_disabled_dummy(api)
        cache = ListingCache()
        record.last_used = time.monotonic() - 2.7
        ticks = ChangeClock.ticks
        before = json.loads(answer(cache, api))["0"]
        await asyncio.sleep(0.4)  # past the next whole second since use, with no change to any record
        after = json.loads(answer(cache, api))["0"]
        assert ChangeClock.ticks == ticks
        assert (before["seconds_since_used"], before["time_since_used"]) == (2, "2 seconds ago")
        assert (after["seconds_since_used"], after["time_since_used"]) == (3, "3 seconds ago")
