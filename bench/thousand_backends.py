"""1,000 backends under one server (issue 15, point 4), on loopback, bounded in time and count.

    .venv/bin/python bench/thousand_backends.py [--backends 1000] [--clients 32] [--seconds 5]
        [--fakes 4] [--unreachable_first 300] [--prompts 320] [--restarts 6]

Part 1, the init queue: a server with the default settings (MaxBackendInitAttempts 3, so 4
attempts 1 s apart); ``--unreachable_first`` by-URL backends whose address has nothing listening
are added, then one healthy backend. Measured from each backend's EditBackend answer: when the
healthy one is ``running`` (goal: within 5 s), and when each unreachable one is ``errored`` with
its reason (goal: within attempts x pause + 5 s).

Part 2, the scale: a server with ``--backends`` by-URL backends, half pointing at nothing (with
MaxBackendInitAttempts huge, so they go waiting -> loading -> waiting every second: statuses move
all the time), half at ``--fakes`` fake ComfyUIs (swarmkeeper_doubles) in one child process. Then:
the server's RSS per backend (after minus before adding them; goal: under 200 KB); ``ListBackends``
from ``--clients`` connections for ``--seconds`` (goal: p99 under 50 ms), and a healthy backend
restarted ``--restarts`` times (before, and during that load), each timed from the request to its first event on
the page's push stream (``/events/backends``; goal: within 1 s); then ``--prompts`` prompts from
``--clients`` clients through the ComfyUI pool, and the scheduler's own time per decision from
/metrics (goal: under 1 ms).

Prints every figure and whether its goal is met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import LoadResult, post_request, run_load  # noqa: E402
from bench.pool_scaling import drive, start_fakes  # noqa: E402
from bench.pool_support import Server, metric, run, start_server  # noqa: E402
from swarmkeeper import fds  # noqa: E402
from swarmkeeper.config import ServerSettings  # noqa: E402
from swarmkeeper.files import write_atomic  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402

KB = 1024
#: What a browser's fetch sends (the load's client does not decode it: it reads the bytes sent).
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
IDENTITY = {"Accept-Encoding": "identity"}


@dataclasses.dataclass
class Figure:
    name: str
    value: float
    unit: str
    goal: float  # the value must be under (or at most) this
    note: str = ""

    def line(self) -> str:
        met = "met" if self.value <= self.goal else "MISSED"
        return f"  {self.name:58} {self.value:9.2f} {self.unit:3}  goal < {self.goal:g} {self.unit}: {met}  {self.note}"


def write_settings(data_dir: Path, max_init_attempts: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    backends = dataclasses.replace(ServerSettings().backends, MaxBackendInitAttempts=max_init_attempts)
    settings = ServerSettings(backends=backends)
    write_atomic(data_dir / "Settings.fds", fds.dumps(settings.to_fds()))


class API:
    def __init__(self, server: Server) -> None:
        self.http = httpx.AsyncClient(base_url=server.url, timeout=60,
                                      limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        self.session = ""

    async def __aenter__(self) -> API:
        self.session = (await self.http.post("/API/GetNewSession", json={})).json()["session_id"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(self, route: str, **body: object) -> dict[str, object]:
        answer = (await self.http.post(f"/API/{route}", json={"session_id": self.session, **body})).json()
        if not isinstance(answer, dict) or "error" in answer or "error_id" in answer:
            raise RuntimeError(f"{route}: {answer}")
        return answer

    async def add(self, address: str) -> tuple[int, float]:
        """A by-URL backend at ``address``: its id, and when its EditBackend was answered."""
        backend_id = int(str((await self.call("AddNewBackend", type_id="comfyui_api"))["id"]))
        await self.call("EditBackend", backend_id=backend_id, title="", settings={"Address": address})
        return backend_id, time.perf_counter()

    async def listing(self) -> dict[str, dict[str, object]]:
        return await self.call("ListBackends")  # type: ignore[return-value]


async def add_all(api: API, addresses: list[str], workers: int = 8) -> dict[int, tuple[str, float]]:
    """Add the backends from ``workers`` clients at once; each id: its address, its EditBackend answer time."""
    added: dict[int, tuple[str, float]] = {}
    pending = list(reversed(addresses))

    async def worker() -> None:
        while pending:
            address = pending.pop()
            backend_id, at = await api.add(address)
            added[backend_id] = address, at

    await asyncio.gather(*(worker() for _ in range(workers)))
    return added


def write_backends(data_dir: Path, addresses: list[str]) -> None:
    """Backends.fds with one by-URL backend per address, ids 0 up (as if added through the API:
    adding 1,000 one by one takes minutes here, each add saving the whole file)."""
    root = fds.Section()
    for backend_id, address in enumerate(addresses):
        entry, settings = fds.Section(), fds.Section()
        settings.set("Address", address)
        for key, value in (("type", "comfyui_api"), ("title", ""), ("enabled", True), ("settings", settings)):
            entry.set(key, value)
        root.set(str(backend_id), entry)
    data_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(data_dir / "Backends.fds", fds.dumps(root))


#: Sockets bound and never listening: their ports refuse connections, and no other process on the
#: machine can take them meanwhile (a port merely free a moment ago may be taken by another program).
HELD: list[socket.socket] = []


def nowhere(count: int) -> list[str]:
    """Addresses with nothing listening, held so for the whole run."""
    addresses = []
    for _ in range(count):
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        HELD.append(held)
        addresses.append(f"http://127.0.0.1:{held.getsockname()[1]}")
    return addresses


async def watch(api: API, until: Callable[[dict[str, dict[str, object]]], bool], seen: dict[tuple[int, str], float],
                deadline: float) -> dict[str, dict[str, object]]:
    """Poll ListBackends every 0.1 s, noting when each (id, status) is first seen, until ``until``."""
    while True:
        listing = await api.listing()
        now = time.perf_counter()
        for key, entry in listing.items():
            seen.setdefault((int(key), str(entry["status"])), now)
        if until(listing) or now > deadline:
            return listing
        await asyncio.sleep(0.1)


async def init_queue_part(server: Server, healthy_url: str, unreachable: int) -> list[Figure]:
    attempts, pause = 4, 1.0  # SwarmUI's defaults: MaxBackendInitAttempts 3 (+ the first), 1 s apart
    async with API(server) as api:
        seen: dict[tuple[int, str], float] = {}  # watched from the first add on
        added: list[int] = []  # the healthy one's id, once all are added

        def settled(listing: dict[str, dict[str, object]]) -> bool:
            return bool(added) and listing[str(added[0])]["status"] == "running" and all(
                listing[str(i)]["status"] == "errored" for i in failing)

        watcher = asyncio.create_task(watch(api, settled, seen, time.perf_counter() + 300))
        failing = await add_all(api, nowhere(unreachable))
        healthy, healthy_at = await api.add(healthy_url)
        added.append(healthy)
        listing = await watcher
    healthy_s = seen.get((healthy, "running"), float("inf")) - healthy_at
    errored = [seen.get((i, "errored"), float("inf")) - at for i, (_, at) in failing.items()]
    after_last = max(seen.get((i, "errored"), float("inf")) for i in failing) - healthy_at
    with_reason = sum(1 for i in failing if "gave up after 4 attempts" in str(listing[str(i)]["status_reason"]))
    print(f"part 1: {unreachable} unreachable by-URL backends added (one example reason: "
          f"{listing[str(next(iter(failing)))]['status_reason']!r})")
    slowest = sorted(failing, key=lambda i: seen.get((i, "errored"), float("inf")) - failing[i][1])[-3:]
    for backend_id in slowest:
        entry = listing[str(backend_id)]
        print(f"  slowest: #{backend_id} {entry['status']} after "
              f"{seen.get((backend_id, 'errored'), float('inf')) - failing[backend_id][1]:.2f} s, "
              f"{entry['init_attempts']} attempts: {entry['status_reason']}")
    return [
        Figure(f"healthy backend added after {unreachable} unreachable: running", healthy_s, "s", 5.0),
        Figure(f"last of {unreachable} unreachable errored ({with_reason} with the reason)", max(errored), "s",
               attempts * pause + 5, f"median {statistics.median(errored):.2f} s"),
        Figure("the same, from the last add (the healthy one's)", after_last, "s", attempts * pause + 5),
    ]


class PushStream:
    """The page's push stream, read in the background: when each (backend, status) event arrived."""

    def __init__(self, server: Server, session: str) -> None:
        self.url = f"{server.url}/events/backends?session_id={session}"
        self.arrived: dict[tuple[int, str], list[float]] = {}
        self.events = 0
        self.resyncs = 0
        self.ready = asyncio.Event()
        self.changed = asyncio.Event()

    async def read(self) -> None:
        async with httpx.AsyncClient(timeout=None) as http, http.stream("GET", self.url) as answer:
            event = ""
            async for line in answer.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    self.resyncs += event == "resync"
                    if event == "ready":
                        self.ready.set()
                elif line.startswith("data: ") and event == "backend":
                    data = json.loads(line[6:])
                    self.events += 1
                    self.arrived.setdefault((int(data["backend_id"]), data["status"]), []).append(time.perf_counter())
                    self.changed.set()

    async def wait_for(self, backend_id: int, status: str, after: float) -> float:
        """Seconds from ``after`` to the first such event at or after it (inf if none in 10 s)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while True:
                    self.changed.clear()
                    times = [t for t in self.arrived.get((backend_id, status), []) if t >= after]
                    if times:
                        return times[0] - after
                    await self.changed.wait()
        return float("inf")


async def restart_times(api: API, stream: PushStream, backend_id: int, restarts: int) -> list[float]:
    """Restart a running backend ``restarts`` times (no file is saved, unlike a toggle or an edit):
    each time, seconds from the request to its first status change (``disabled``, "Shut down.")
    arriving on the push stream; then wait for it to run again."""
    delays: list[float] = []
    for _ in range(restarts):
        sent = time.perf_counter()
        await api.call("RestartBackends", backend=str(backend_id))
        delays.append(await stream.wait_for(backend_id, "disabled", sent))
        await stream.wait_for(backend_id, "running", sent)
    return delays


async def rss_of_empty(server: Server) -> int:
    """The RSS of a server with no backends, once it has answered a ListBackends."""
    async with API(server) as api:
        await api.listing()
    return int(psutil.Process(server.process.pid).memory_info().rss)


async def scale_part(server: Server, urls: list[str], addresses: list[str], rss_empty: int,
                     options: argparse.Namespace) -> tuple[list[Figure], bytes, bytes]:
    """The figures, and a ListBackends answer and its gzip (for the baselines)."""
    process = psutil.Process(server.process.pid)
    half = sum(1 for address in addresses if address in urls)
    reachable_ids = [n for n, address in enumerate(addresses) if address in urls]
    async with API(server) as api:
        started = time.perf_counter()
        seen: dict[tuple[int, str], float] = {}
        await watch(api, lambda listing: sum(e["status"] == "running" for e in listing.values()) >= half,
                    seen, time.perf_counter() + 300)
        print(f"part 2: {len(addresses)} backends loaded from Backends.fds, {half} of them running "
              f"{time.perf_counter() - started:.1f} s after the server answered")
        await asyncio.sleep(2)  # let the moving statuses reach their steady churn
        rss_after = process.memory_info().rss
        cpu_before, quiet_started = sum(process.cpu_times()[:2]), time.perf_counter()
        await asyncio.sleep(3)
        churn_cpu = (sum(process.cpu_times()[:2]) - cpu_before) / (time.perf_counter() - quiet_started)
        stream = PushStream(server, api.session)
        reader = asyncio.create_task(stream.read())
        try:
            await asyncio.wait_for(stream.ready.wait(), 10)
            quiet_delays = await restart_times(api, stream, reachable_ids[0], options.restarts)
            port = int(server.url.rsplit(":", 1)[1])
            session = json.dumps({"session_id": api.session}).encode()
            request = post_request("127.0.0.1", port, "/API/ListBackends", session, BROWSER)
            plain_request = post_request("127.0.0.1", port, "/API/ListBackends", session, IDENTITY)
            paired: dict[str, list[LoadResult]] = {"identity": [], "gzip": []}
            for _ in range(2):  # for scale: as a client that takes no gzip, and as a browser, alternately
                for name, sent in (("identity", plain_request), ("gzip", request)):
                    paired[name].append(await run_load("127.0.0.1", port, sent, seconds=options.seconds,
                                                       connections=options.clients))
            events_before, stream_started = stream.events, time.perf_counter()
            load, delays = await both(run_load("127.0.0.1", port, request, seconds=options.seconds,
                                               connections=options.clients),
                                      restart_times(api, stream, reachable_ids[0], options.restarts))
            events_per_s = (stream.events - events_before) / (time.perf_counter() - stream_started)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader
        body = (await api.http.post("/API/ListBackends", json={"session_id": api.session}, headers=IDENTITY)).content
        zipped = await api.http.post("/API/ListBackends", json={"session_id": api.session}, headers=BROWSER)
        assert zipped.headers.get("content-encoding") == "gzip", zipped.headers
        assert zipped.json().keys() == json.loads(body).keys()  # httpx decoded it: the same listing
        gzipped = int(zipped.headers["content-length"])
    decisions_before = await metric(server, "swarmkeeper_dispatch_decision_seconds_sum"), \
        await metric(server, "swarmkeeper_dispatch_decision_seconds_count")
    await drive(server.comfy_url, options.prompts, options.clients)
    total = await metric(server, "swarmkeeper_dispatch_decision_seconds_sum") - decisions_before[0]
    count = await metric(server, "swarmkeeper_dispatch_decision_seconds_count") - decisions_before[1]
    for name, results in paired.items():
        print(f"  ListBackends, no restarts, Accept-Encoding {name}, two runs alternating with the other: " + "; ".join(
            f"p50 {r.median * 1000:.1f} ms, p99 {r.percentile(0.99) * 1000:.1f} ms, {r.rps:.0f}/s, errors {r.errors}"
            for r in results))
    print(f"  ListBackends: {load.requests} answers of {gzipped // KB} KB gzip ({len(body) // KB} KB of JSON) in "
          f"{load.seconds:.1f} s "
          f"({load.rps:.0f}/s), errors {load.errors}; the push stream carried {events_per_s:.0f} events/s "
          f"({stream.resyncs} resyncs); restarts seen after {', '.join(f'{d:.3f}' for d in delays)} s")
    print(f"  with nothing asked of it, the server used {churn_cpu:.0%} of one core (the moving statuses, the "
          f"health checks); restarts seen after {', '.join(f'{d:.3f}' for d in quiet_delays)} s")
    figures = [
        Figure(f"ListBackends p99 ({options.clients} connections, statuses moving)",
               load.percentile(0.99) * 1000, "ms", 50, f"p50 {load.median * 1000:.1f} ms, {load.rps:.0f}/s"),
        Figure(f"scheduler decision, mean over {count:.0f} prompts", total / max(count, 1) * 1000, "ms", 1.0),
        Figure(f"server RSS per backend ({len(addresses)} backends)", (rss_after - rss_empty) / len(addresses) / KB,
               "KB", 200, f"RSS {rss_empty / KB / KB:.0f} MB with none, {rss_after / KB / KB:.0f} MB"),
        Figure("status change on the push stream (slowest restart)", max(quiet_delays), "s", 1.0,
               f"median {statistics.median(quiet_delays):.3f} s"),
        Figure(f"the same, while {options.clients} connections read ListBackends", max(delays), "s", 1.0,
               f"median {statistics.median(delays):.3f} s"),
    ]
    return figures, body, zipped.content


def start_baseline(body: bytes, folder: Path) -> tuple[int, subprocess.Popen[bytes]]:
    """A bare Starlette route under uvicorn answering ``body`` (bench/baseline_app.py): its port."""
    body_file = folder / "body.json"
    body_file.write_bytes(body)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(port),
                                "--log-level", "error", "--no-access-log"], cwd=ROOT,
                               env={**os.environ, "BASELINE_BODY_FILE": str(body_file)})
    return port, process


def run_baseline(body: bytes, folder: Path, options: argparse.Namespace) -> LoadResult:
    """The bare route serving ``body`` (the answer, or its gzip's bytes as they are), under the same load."""
    port, baseline = start_baseline(body, folder)
    try:
        return run(baseline_load(port, options))
    finally:
        baseline.terminate()
        baseline.wait(10)


async def baseline_load(port: int, options: argparse.Namespace) -> LoadResult:
    """The same load against the baseline, once it answers."""
    request = post_request("127.0.0.1", port, "/API/ListBackends", b"{}")
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(OSError):
                await run_load("127.0.0.1", port, request, seconds=0.2, connections=1)
                break
            await asyncio.sleep(0.1)
    return await run_load("127.0.0.1", port, request, seconds=options.seconds, connections=options.clients)


async def both(first: Awaitable[LoadResult], second: Awaitable[list[float]]) -> tuple[LoadResult, list[float]]:
    a, b = await asyncio.gather(first, second)
    return a, b


def wait_answering(urls: list[str]) -> None:
    for url in urls:
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{url}/system_stats", timeout=1)
                break
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fakes", type=int, default=4)
    parser.add_argument("--unreachable_first", type=int, default=300)
    parser.add_argument("--prompts", type=int, default=320)
    parser.add_argument("--restarts", type=int, default=6)
    options = parser.parse_args()
    urls, fakes = start_fakes(options.fakes, job_seconds=0.01)
    wait_answering(urls)
    figures: list[Figure] = []
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            server = start_server(folder / "Data1")
            try:
                figures += run(init_queue_part(server, urls[0], options.unreachable_first))
            finally:
                server.stop()
            server = start_server(folder / "Data0")
            try:
                rss_empty = run(rss_of_empty(server))
            finally:
                server.stop()
            half = options.backends // 2
            reachable = [urls[n % len(urls)] for n in range(half)]
            addresses = [a for pair in zip(nowhere(options.backends - half), reachable, strict=False) for a in pair]
            write_settings(folder / "Data2", 1_000_000)
            write_backends(folder / "Data2", addresses)
            server = start_server(folder / "Data2")
            try:
                scale_figures, body, zipped = run(scale_part(server, urls, addresses, rss_empty, options))
                figures += scale_figures
                base, base_zipped = (run_baseline(answer, folder, options) for answer in (body, zipped))
            finally:
                server.stop()
    finally:
        fakes.terminate()
        fakes.wait(10)
    for name, result in (("answer", base), ("gzip", base_zipped)):
        print(f"  for scale, the same {name} from a bare Starlette route, same load, same machine (the "
              f"{options.backends} still churning): p50 {result.median * 1000:.1f} ms, "
              f"p99 {result.percentile(0.99) * 1000:.1f} ms, {result.rps:.0f}/s")
    print("figures:")
    for figure in figures:
        print(figure.line())


if __name__ == "__main__":
    main()
