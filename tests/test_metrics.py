"""GET /metrics, parsed with prometheus-client's own parser: the gauges match what ListBackends says
after adds, failures, crashes, restarts and frees, and the counters count those events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from swarmkeeper import fds
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.config import BackendsSettings, ServerSettings
from swarmkeeper.files import write_atomic
from swarmkeeper.metrics import Metrics, RestartCause
from tests.metrics_support import Samples, parse, scrape, series, value
from tests.servers import APIClient, in_process, test_config

DUMMY = "swarmkeeper_dummy"
@pytest.fixture
def quick_giving_up(data_dir: Path) -> Path:
    """A data dir whose Settings.fds gives up on a failing init after one retry (2 attempts)."""
    settings = ServerSettings(backends=BackendsSettings(MaxBackendInitAttempts=1))
    data_dir.mkdir(parents=True)
    write_atomic(data_dir / "Settings.fds", fds.dumps(settings.to_fds()))
    return data_dir


@pytest.fixture
async def api(quick_giving_up: Path) -> AsyncIterator[APIClient]:
    async with in_process(test_config(quick_giving_up)) as client:
        await client.new_session()
        yield client


async def add(api: APIClient, **settings: object) -> int:
    added = await api.ok("AddNewBackend", type_id=DUMMY)
    await api.ok("EditBackend", backend_id=added["id"], title="", settings=settings)
    return int(added["id"])


def assert_matches_listing(samples: Samples, listing: dict[str, dict]) -> None:
    """Every gauge of every backend says what ListBackends says, and the per-type counts add up."""
    for key, entry in listing.items():
        labels = {"backend": key, "type": entry["type"]}
        statuses = {dict(found)["status"]: number for found, number in series(samples, "swarmkeeper_backend_status")
                    .items() if dict(found)["backend"] == key}
        assert statuses == {entry["status"]: 1.0}, (key, statuses)
        assert value(samples, "swarmkeeper_backend_enabled", **labels) == float(entry["enabled"])
        assert value(samples, "swarmkeeper_backend_jobs_in_flight", **labels) == entry["usages"]
        assert value(samples, "swarmkeeper_backend_max_usages", **labels) == entry["max_usages"]
        assert value(samples, "swarmkeeper_backend_init_attempts", **labels) == entry["init_attempts"]
    for status in BackendStatus:
        expected = sum(1 for entry in listing.values() if entry["type"] == DUMMY and entry["status"] == status)
        assert value(samples, "swarmkeeper_backends", type=DUMMY, status=str(status)) == expected
    backends = {dict(labels)["backend"] for labels in series(samples, "swarmkeeper_backend_enabled")}
    assert backends == set(listing)


async def test_gauges_match_list_backends_after_adds_and_failures(api: APIClient) -> None:
    running = await add(api, Address="a")
    failing = await add(api, Address="b", Mode="fail")
    unconfigured = await add(api)
    await api.wait_status(running, "running")
    await api.wait_status(failing, "errored")
    await api.wait_status(unconfigured, "disabled")
    await api.ok("ToggleBackend", backend_id=unconfigured, enabled=False)
    listing = await api.ok("ListBackends")
    samples = await scrape(api)
    assert_matches_listing(samples, listing)
    assert value(samples, "swarmkeeper_backends", type=DUMMY, status="running") == 1
    assert value(samples, "swarmkeeper_backends", type=DUMMY, status="errored") == 1
    assert value(samples, "swarmkeeper_backend_init_attempts", backend=str(failing), type=DUMMY) == 2
    # counters: the failing backend tried twice (once at add with no address, which is no failure)
    assert value(samples, "swarmkeeper_init_failures_total", type=DUMMY, final="false") == 1
    assert value(samples, "swarmkeeper_init_failures_total", type=DUMMY, final="true") == 1
    assert value(samples, "swarmkeeper_status_changes_total", type=DUMMY, status="errored") == 1
    attempts = value(samples, "swarmkeeper_init_attempts_total", type=DUMMY)
    assert attempts == sum(api.services.registry.get(i).backend.inits for i in (running, failing, unconfigured))


async def test_restarts_are_counted_by_cause_and_gauges_follow(api: APIClient) -> None:
    first, second = await add(api, Address="a"), await add(api, Address="b")
    for backend_id in (first, second):
        await api.wait_status(backend_id, "running")
    assert (await api.ok("RestartBackends", backend="all"))["count"] == 2
    assert (await api.ok("RestartBackends", backend=str(first), force=True))["count"] == 1
    for backend_id in (first, second):
        await api.wait_status(backend_id, "running")
    samples = await scrape(api)
    assert value(samples, "swarmkeeper_restarts_total", type=DUMMY, cause="user") == 2
    assert value(samples, "swarmkeeper_restarts_total", type=DUMMY, cause="force") == 1
    assert value(samples, "swarmkeeper_restarts_total", type=DUMMY, cause="crash") == 0
    assert_matches_listing(samples, await api.ok("ListBackends"))


async def test_a_crash_shows_in_status_and_the_crash_hook_counts(api: APIClient) -> None:
    backend_id = await add(api, Address="a")
    await api.wait_status(backend_id, "running")
    record = api.services.registry.get(backend_id)
    record.set_status(BackendStatus.ERRORED, "The process exited with code 1.")  # as a supervisor reports a death
    record.services.metrics.restarted(record.type.id, RestartCause.CRASH)  # the hook a supervisor calls
    samples = await scrape(api)
    listing = await api.ok("ListBackends")
    assert listing[str(backend_id)]["status"] == "errored"
    assert_matches_listing(samples, listing)
    assert value(samples, "swarmkeeper_restarts_total", type=DUMMY, cause="crash") == 1
    assert value(samples, "swarmkeeper_status_changes_total", type=DUMMY, status="errored") == 1


async def test_memory_free_calls_by_outcome(api: APIClient) -> None:
    ids = [await add(api, Address="a"), await add(api, Address="b", Mode="nofree"),
           await add(api, Address="c", Mode="freeerror")]
    for backend_id in ids:
        await api.wait_status(backend_id, "running")
    assert await api.ok("FreeBackendMemory") == {"result": True, "count": 1}
    samples = await scrape(api)
    for outcome in ("freed", "declined", "failed"):
        assert value(samples, "swarmkeeper_memory_free_calls_total", type=DUMMY, outcome=outcome) == 1


async def test_api_latency_by_declared_route_name_only(api: APIClient) -> None:
    for _ in range(3):
        await api.ok("ListBackends")
    await api.call("listbackends")  # any spelling counts under the declared name
    await api.call("NoSuchRoute12345")
    response = await api.raw("ListBackends", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    samples = await scrape(api)
    assert value(samples, "swarmkeeper_api_request_duration_seconds_count", route="ListBackends") == 5
    assert value(samples, "swarmkeeper_api_requests_total", route="ListBackends", code="200") == 4
    assert value(samples, "swarmkeeper_api_requests_total", route="ListBackends", code="400") == 1
    assert value(samples, "swarmkeeper_api_requests_total", route="unknown", code="400") == 1
    routes = {dict(labels)["route"] for labels in series(samples, "swarmkeeper_api_requests_total")}
    assert routes <= {route.name for route in api.services.routes} | {"unknown"}
    assert value(samples, "swarmkeeper_api_request_duration_seconds_sum", route="ListBackends") > 0


async def test_every_type_has_zeroed_counters_and_process_metrics_are_there(api: APIClient) -> None:
    samples = await scrape(api)
    for backend_type in api.services.types:
        assert value(samples, "swarmkeeper_init_attempts_total", type=backend_type.id) == 0
        assert value(samples, "swarmkeeper_backends", type=backend_type.id, status="running") == 0
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "swarmkeeper_build_info", version=__import__("swarmkeeper").__version__) == 1


async def test_openmetrics_when_asked(api: APIClient) -> None:
    response = await api.http.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


async def test_two_servers_in_one_process_keep_separate_counts(tmp_path: Path) -> None:
    async with in_process(test_config(tmp_path / "one")) as one, in_process(test_config(tmp_path / "two")) as two:
        await one.ok("AddNewBackend", type_id=DUMMY)
        await one.ok("RestartBackends", force=True)
        assert value(await scrape(one), "swarmkeeper_restarts_total", type=DUMMY, cause="force") == 1
        assert value(await scrape(two), "swarmkeeper_restarts_total", type=DUMMY, cause="force") == 0
        assert one.services.metrics.registry is not two.services.metrics.registry


def test_metrics_object_records_each_fact() -> None:
    metrics = Metrics(process=False)
    metrics.declare_types(["t"])
    metrics.init_attempt("t")
    metrics.init_failed("t", final=True)
    metrics.api_call("ListBackends", 200, 0.002)
    samples = parse(metrics.exposition(None)[0].decode())
    assert value(samples, "swarmkeeper_init_attempts_total", type="t") == 1
    assert value(samples, "swarmkeeper_init_failures_total", type="t", final="true") == 1
    assert value(samples, "swarmkeeper_init_failures_total", type="t", final="false") == 0
    assert value(samples, "swarmkeeper_api_request_duration_seconds_bucket", route="ListBackends", le="0.0025") == 1
    assert value(samples, "swarmkeeper_api_request_duration_seconds_bucket", route="ListBackends", le="0.001") == 0
    assert not any(name.startswith("process_") for name, _ in samples)
