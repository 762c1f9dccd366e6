"""The farm view's data: the history's time buckets, the snapshot, and the push stream's ``farm``
events (only on streams that ask with ``farm=1``)."""

from __future__ import annotations

from pathlib import Path

import httpx

from swarmkeeper.api.farm_view import recent
from swarmkeeper.metrics.history import Buckets, FarmHistory
from swarmkeeper.web.feature import web_feature
from swarmkeeper.web.stream import StreamPolicy
from tests.servers import APIClient, on_loopback, test_config
from tests.web.support import WEB_TYPES, SSEMessage, sse_messages


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_buckets_keep_the_last_hour_oldest_first() -> None:
    buckets = Buckets(60.0, 3)
    buckets.add(0.0)
    buckets.add(59.0, 2)
    buckets.add(61.0)
    assert buckets.series(61.0) == [0, 3, 1]
    assert buckets.series(200.0) == [1, 0, 0]  # the first minute has rolled out
    buckets.keep_max(200.0, 5)
    buckets.keep_max(201.0, 2)
    assert buckets.series(201.0) == [1, 0, 5]
    assert buckets.series(400.0) == [0, 0, 0]


def test_history_counts_images_per_backend_and_the_deepest_queue() -> None:
    clock = Clock()
    history = FarmHistory(bucket_seconds=10.0, buckets=4, clock=clock)
    depth = [3]
    history.queue_depth = lambda: depth[0]
    history.image_done(0)
    history.image_done(1)
    assert history.sample_queue() == 3
    clock.now += 10
    depth[0] = 1
    history.image_done(0)
    history.image_done(None)  # failed before reaching a backend: pool-wide only
    history.sample_queue()
    assert history.images.series(clock.now) == [0, 0, 2, 2]
    assert history.queue.series(clock.now) == [0, 0, 3, 1]
    assert history.backend_series(0, clock.now) == [0, 0, 1, 1]
    assert history.backend_series(7, clock.now) == [0, 0, 0, 0]
    assert history.totals == {0: 2, 1: 1}


def test_a_series_is_sent_without_its_leading_zeros() -> None:
    assert recent([0, 0, 3, 0, 1]) == [3, 0, 1] and recent([0, 0]) == [] and recent([2]) == [2]


async def test_the_stream_sends_farm_snapshots_only_when_asked(data_dir: Path) -> None:
    policy = StreamPolicy(heartbeat=5.0, check_every=0.02, farm_every=0.05)
    async with on_loopback(test_config(data_dir, backend_type_modules=WEB_TYPES),
                           features=[web_feature(policy)]) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        api = APIClient(http, server.services)
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        session = await api.new_session()
        farm = await first_events(http, {"session_id": session, "farm": "1"}, 3)
        assert [message.event for message in farm] == ["ready", "farm", "farm"]
        snapshot = farm[1].data
        assert set(snapshot) == {"time", "bucket_seconds", "buckets", "pool", "backends"}
        assert snapshot["bucket_seconds"] == 60.0 and len(snapshot["pool"]["images"]) == snapshot["buckets"] == 60
        (backend,) = snapshot["backends"]
        assert set(backend) == {"id", "title", "type", "status", "running", "waiting", "max_usages", "model",
                                "images", "images_total", "vram_used", "vram_total", "devices"}
        assert (backend["type"], backend["images_total"], backend["vram_total"]) == ("swarmkeeper_dummy", 0, 0)
        assert backend["images"] == []  # an idle hour is sent as nothing
        plain = await first_events(http, {"session_id": session}, 2, until="backend")
        assert "farm" not in [message.event for message in plain]


async def first_events(http: httpx.AsyncClient, params: dict[str, str], count: int,
                       until: str | None = None) -> list[SSEMessage]:
    """The stream's first ``count`` events (or, with ``until``, those before a change is made)."""
    messages: list[SSEMessage] = []
    async with http.stream("GET", "/events/backends", params=params) as response:
        async for message in sse_messages(response.aiter_lines()):
            if message.comment:
                continue
            messages.append(message)
            if until is not None and message.event == "ready":
                await http.post("/API/ToggleBackend", json={"session_id": params["session_id"], "backend_id": 0,
                                                            "enabled": False})
            if len(messages) == count or message.event == until:
                return messages
    return messages
