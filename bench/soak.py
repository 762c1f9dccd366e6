"""Soak: concurrent clients mixing ListBackends, EditBackend, ToggleBackend, RestartBackends and
FreeBackendMemory on by-URL ComfyUI backends spread over a few fake ComfyUI processes, which crash
now and then and come back on the same port (the backends notice through their health monitor).

    .venv/bin/python bench/soak.py [--seconds 60] [--clients 50] [--backends 100] [--fakes 5]
                                   [--crash_every 4] [--warmup 10]

swarmkeeper runs as its own process (``serve``, loglevel Error); the fakes are
``python -m swarmkeeper_doubles.fake_comfyui`` processes; everything is stopped at the end.
Prints requests served, errors by kind (goal: no HTTP 5xx), lost edits (goal: none: every
answered EditBackend's title is what ListBackends and Backends.fds show at the end for that
backend, unless a later answered edit replaced it), latency percentiles by route, and the
server's RSS after the warm-up and at the end (goal: growth under 5%).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak_support import (  # noqa: E402
    CallError,
    Client,
    Edit,
    FakeFleet,
    Ledger,
    Tally,
    cpu_of,
    percentile,
    rss_of,
    server_env,
)
from swarmkeeper import fds  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402

#: The mix: route and weight.
MIX = (("list", 40), ("edit", 20), ("toggle", 15), ("restart", 15), ("free", 10))


class Soak:
    def __init__(self, port: int, fleet: FakeFleet, backends: int) -> None:
        self.port = port
        self.fleet = fleet
        self.ids = list(range(backends))
        self.ledger = Ledger()
        self.tally = Tally()
        self.session = ""

    def address_of(self, backend_id: int) -> str:
        return self.fleet.fakes[backend_id % len(self.fleet.fakes)].url

    async def call(self, client: Client, route: str, **params: object) -> object:
        started = time.perf_counter()
        try:
            status, answer = await client.call(route, {"session_id": self.session, **params})
        except CallError as error:
            self.tally.failed(route, error.kind)
            return None
        self.tally.answered(route, time.perf_counter() - started, status, answer)
        return answer if status == 200 else None

    # --- set-up ---

    async def populate(self) -> None:
        client = Client(self.port)
        _, answer = await client.call("GetNewSession", {})
        self.session = answer["session_id"]
        for backend_id in self.ids:
            added = await self.call(client, "AddNewBackend", type_id="comfyui_api")
            assert isinstance(added, dict) and added["id"] == backend_id, added
            title = f"b{backend_id}-initial"
            settings = {"Address": self.address_of(backend_id), "AllowIdle": backend_id % 2 == 0}
            await self.call(client, "EditBackend", backend_id=backend_id, title=title, settings=settings)
            self.ledger.initial[backend_id] = title
        await self.until_running(client, 120)
        client.close()

    async def until_running(self, client: Client, timeout: float) -> int:
        """Until every backend is running (or the time is up); how many are."""
        deadline = time.monotonic() + timeout
        running = 0
        while time.monotonic() < deadline:
            listing = await self.call(client, "ListBackends")
            running = sum(1 for e in (listing or {}).values() if isinstance(e, dict) and e["status"] == "running")
            if running == len(self.ids):
                break
            await asyncio.sleep(0.5)
        return running

    # --- the mix ---

    async def client_loop(self, number: int, until: float) -> None:
        client, rng, sent = Client(self.port), random.Random(number), 0
        routes, weights = zip(*MIX, strict=True)
        while time.monotonic() < until:
            action = rng.choices(routes, weights)[0]
            backend_id = rng.choice(self.ids)
            sent += 1
            if action == "list":
                await self.call(client, "ListBackends")
            elif action == "edit":
                await self.edit(client, backend_id, f"c{number}-{sent}")
            elif action == "toggle":
                await self.call(client, "ToggleBackend", backend_id=backend_id, enabled=False)
                await self.call(client, "ToggleBackend", backend_id=backend_id, enabled=True)
            elif action == "restart":
                await self.call(client, "RestartBackends", backend=str(backend_id), force=rng.random() < 0.2)
            else:
                await self.call(client, "FreeBackendMemory", backend="all" if rng.random() < 0.05 else str(backend_id),
                                system_ram=rng.random() < 0.5)
        client.close()

    async def edit(self, client: Client, backend_id: int, title: str) -> None:
        sent = time.monotonic()
        answer = await self.call(client, "EditBackend", backend_id=backend_id, title=title,
                                 settings={"Address": self.address_of(backend_id)})
        if answer is None:  # no answer: it may or may not have been applied
            self.ledger.edits[backend_id].append(Edit(title, sent, None))
        elif isinstance(answer, dict) and "error" not in answer:
            self.ledger.edits[backend_id].append(Edit(title, sent, time.monotonic()))

    async def run(self, clients: int, seconds: float) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(self.client_loop(n, until) for n in range(clients)))

    # --- the end ---

    async def shown_titles(self, data_dir: Path) -> tuple[dict[int, str], dict[int, str]]:
        client = Client(self.port)
        listing = await self.call(client, "ListBackends")
        client.close()
        listed = {int(key): entry["title"] for key, entry in (listing or {}).items()}
        root = fds.loads((data_dir / "Backends.fds").read_text())
        saved = {int(key): str(root[key]["title"]) for key in root}
        return listed, saved


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "swarmkeeper", "serve", "--port", str(port), "--data_dir", str(data_dir),
         "--loglevel", "Error", "--comfy_port", "-1"],
        cwd=ROOT, env=server_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"swarmkeeper exited early:\n{log.read_text()[-3000:]}")
        try:
            httpx.post(f"http://127.0.0.1:{port}/API/GetNewSession", json={}, timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("swarmkeeper did not start")


async def soak(options: argparse.Namespace, folder: Path) -> None:
    fleet = FakeFleet(options.fakes)
    await fleet.start()
    port, data_dir = free_port(), folder / "Data"
    server = start_server(data_dir, port, folder / "server.log")
    try:
        bench = Soak(port, fleet, options.backends)
        await bench.populate()
        stop = asyncio.Event()
        chaos = asyncio.create_task(fleet.chaos(options.crash_every, stop))
        await bench.run(options.clients, options.warmup)
        warm, warm_served = rss_of(server.pid), bench.tally.served
        bench.tally.latencies.clear()
        started, cpu = time.monotonic(), cpu_of(server.pid)
        await bench.run(options.clients, options.seconds)
        elapsed = time.monotonic() - started
        end, cpu = rss_of(server.pid), cpu_of(server.pid) - cpu
        stop.set()
        await chaos
        await fleet.all_up()
        running = await bench.until_running(Client(port), 60)
        listed, saved = await bench.shown_titles(data_dir)
        report(options, bench, fleet, warm, end, bench.tally.served - warm_served, elapsed, running, listed, saved)
        print(f"  server CPU: {cpu:.1f} s in {elapsed:.0f} s ({cpu / elapsed * 100:.0f}% of one core); machine load "
              f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the fakes and this client share them)")
        if bench.tally.server_errors:
            print("\nserver log tail:\n" + (folder / "server.log").read_text()[-4000:])
    finally:
        server.terminate()
        server.wait(60)
        fleet.stop()


def report(options: argparse.Namespace, bench: Soak, fleet: FakeFleet, warm: int, end: int, served: int,
           elapsed: float, running: int, listed: dict[int, str], saved: dict[int, str]) -> None:
    tally, ledger = bench.tally, bench.ledger
    edits = sum(1 for edits in ledger.edits.values() for edit in edits if edit.answered is not None)
    print(f"soak: {options.clients} clients, {options.backends} comfyui_api backends on {options.fakes} fake "
          f"ComfyUIs, {elapsed:.0f} s measured after a {options.warmup:g} s warm-up; {fleet.crashes} fake crashes")
    print(f"  requests served: {served} ({served / elapsed:.0f}/s), answered edits: {edits}")
    print(f"  errors by kind: {dict(tally.errors) or 'none'}  (HTTP 5xx: {tally.server_errors})")
    every = [seconds for values in tally.latencies.values() for seconds in values]
    print(f"  latency: p50 {percentile(every, 0.5) * 1000:.1f} ms, p99 {percentile(every, 0.99) * 1000:.1f} ms")
    for route, values in sorted(tally.latencies.items()):
        print(f"    {route:18} n={len(values):6}  p50 {percentile(values, 0.5) * 1000:7.1f} ms  "
              f"p99 {percentile(values, 0.99) * 1000:7.1f} ms")
    lost_listed, lost_saved = ledger.lost(listed), ledger.lost(saved)
    print(f"  lost edits: ListBackends {len(lost_listed)}, Backends.fds {len(lost_saved)} "
          f"(backends listed {len(listed)}, saved {len(saved)}; running at the end {running})")
    for backend_id, (title, allowed) in list(lost_listed.items())[:5]:
        print(f"    backend {backend_id}: shows {title!r}, expected one of {sorted(allowed)}")
    growth = (end - warm) / warm * 100
    print(f"  server RSS: {warm / 2**20:.1f} MiB after warm-up, {end / 2**20:.1f} MiB at the end "
          f"({growth:+.1f}%; goal under 5%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured run (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--backends", type=int, default=100, help="comfyui_api backends (default 100)")
    parser.add_argument("--fakes", type=int, default=5, help="fake ComfyUI processes (default 5)")
    parser.add_argument("--crash_every", type=float, default=4.0, help="seconds between fake crashes (default 4)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of the same mix before measuring")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(soak(options, Path(folder)))


if __name__ == "__main__":
    main()
