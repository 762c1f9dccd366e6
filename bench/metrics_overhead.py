"""What metrics cost: ``ListBackends`` through the app in-process (ASGI, no socket) without the
metrics feature (the baseline) and with it (its timing middleware on every API call), and one
``GET /metrics`` scrape, all with the same number of running dummy backends, in the same run.

    .venv/bin/python bench/metrics_overhead.py [--backends 100] [--calls 2000] [--rounds 5]

Prints the median time per call of each and its ratio to the baseline (goal for the middleware:
at most 1.10; a scrape is reported against one ListBackends call, for scale).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swarmkeeper.app import FEATURES, create_app
from swarmkeeper.config import ServerConfig
from swarmkeeper.features import Feature
from swarmkeeper.metrics.feature import METRICS

Call = Callable[[], Awaitable[httpx.Response]]
DUMMY = ("swarmkeeper.testing.dummy_backend",)


@asynccontextmanager
async def server(data_dir: Path, features: list[Feature], backends: int) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerConfig(data_dir=data_dir, backend_type_modules=DUMMY), features=features)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://b") as http:
        await populate(http, backends)
        yield http


async def populate(http: httpx.AsyncClient, count: int) -> None:
    session = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
    http.headers["X-Session-ID"] = session
    for number in range(count):
        added = (await http.post("/API/AddNewBackend", json={"type_id": "swarmkeeper_dummy"})).json()
        await http.post("/API/EditBackend", json={"backend_id": added["id"], "title": f"GPU {number}",
                                                  "settings": {"Address": f"dummy{number}"}})
    for _ in range(200):
        listing = (await http.post("/API/ListBackends", json={})).json()
        if all(entry["status"] == "running" for entry in listing.values()):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the backends did not all start")


async def per_call(call: Call, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        response = await call()
        assert response.status_code == 200, response.text
    return (time.perf_counter() - started) / calls


async def run(options: argparse.Namespace) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"baseline (no metrics)": [], "with metrics": [], "GET /metrics": []}
    without = [feature for feature in FEATURES if feature is not METRICS]
    with tempfile.TemporaryDirectory() as folder:
        async with server(Path(folder, "a"), without, options.backends) as bare, \
                server(Path(folder, "b"), FEATURES, options.backends) as measured:
            for _ in range(options.rounds):  # alternate, so drift in the machine's load hits both
                results["baseline (no metrics)"].append(
                    await per_call(lambda: bare.post("/API/ListBackends", json={}), options.calls))
                results["with metrics"].append(
                    await per_call(lambda: measured.post("/API/ListBackends", json={}), options.calls))
                results["GET /metrics"].append(
                    await per_call(lambda: measured.get("/metrics"), max(options.calls // 20, 10)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", type=int, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    results = asyncio.run(run(options))
    medians = {name: statistics.median(times) for name, times in results.items()}
    baseline = medians["baseline (no metrics)"]
    print(f"{options.backends} running backends; median of {options.rounds} rounds")
    for name, median in medians.items():
        print(f"  {name:22} {median * 1e6:9.1f} us per call   ratio to baseline ListBackends {median / baseline:5.2f}")
    print(f"  middleware overhead ratio: {medians['with metrics'] / baseline:.2f} (goal: at most 1.10)")


if __name__ == "__main__":
    main()
