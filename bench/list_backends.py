"""ListBackends throughput with 200 backends, against a bare Starlette route serving the same
precomputed JSON, both under uvicorn in child processes, measured in the same run.

    .venv/bin/python bench/list_backends.py [--seconds 5] [--connections 16]

Prints requests per second of each, the ratio (goal: at least 0.5) and the p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import LoadResult, post_request, run_load  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early")
        try:
            httpx.post(f"{url}/API/GetNewSession", json={}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def populate(url: str, count: int) -> tuple[str, bytes]:
    with httpx.Client(base_url=url, timeout=30) as http:
        session = http.post("/API/GetNewSession", json={}).json()["session_id"]
        for n in range(count):
            backend = http.post("/API/AddNewBackend", json={"session_id": session, "type_id": "swarmkeeper_dummy"})
            http.post("/API/EditBackend", json={"session_id": session, "backend_id": backend.json()["id"],
                                                "title": f"GPU {n}", "settings": {"Address": f"dummy{n}",
                                                                                  "Token": "secret"}})
        for _ in range(100):
            listing = http.post("/API/ListBackends", json={"session_id": session})
            if all(entry["status"] == "running" for entry in listing.json().values()):
                return session, listing.content
            time.sleep(0.1)
    raise RuntimeError("backends did not all start")


async def measure(port: int, request: bytes, seconds: float, connections: int) -> LoadResult:
    await run_load("127.0.0.1", port, request, seconds=0.5, connections=connections)  # warm-up
    return await run_load("127.0.0.1", port, request, seconds=seconds, connections=connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backends", type=int, default=200)
    options = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        ours_port, base_port = free_port(), free_port()
        ours = start([python, "-m", "swarmkeeper", "serve", "--port", str(ours_port), "--data_dir",
                      f"{folder}/Data", "--backend_types", "swarmkeeper.testing.dummy_backend",
                      "--loglevel", "Error"])
        try:
            wait_ready(f"http://127.0.0.1:{ours_port}", ours)
            session, body = populate(f"http://127.0.0.1:{ours_port}", options.backends)
            body_file = Path(folder) / "body.json"
            body_file.write_bytes(body)
            baseline = start([python, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(base_port),
                              "--log-level", "error", "--no-access-log"], {"BASELINE_BODY_FILE": str(body_file)})
            try:
                wait_ready(f"http://127.0.0.1:{base_port}", baseline)
                request_body = json.dumps({"session_id": session}).encode()
                ours_request = post_request("127.0.0.1", ours_port, "/API/ListBackends", request_body)
                base_request = post_request("127.0.0.1", base_port, "/API/ListBackends", request_body)
                results: dict[str, list[LoadResult]] = {"swarmkeeper": [], "baseline": []}
                for _ in range(2):  # alternate, so drift in the machine's load hits both
                    results["baseline"].append(asyncio.run(measure(base_port, base_request, options.seconds,
                                                                   options.connections)))
                    results["swarmkeeper"].append(asyncio.run(measure(ours_port, ours_request, options.seconds,
                                                                      options.connections)))
            finally:
                baseline.terminate()
                baseline.wait()
        finally:
            ours.terminate()
            ours.wait()
    report(results, len(body), options)


def report(results: dict[str, list[LoadResult]], body_size: int, options: argparse.Namespace) -> None:
    best = {name: max(runs, key=lambda r: r.rps) for name, runs in results.items()}
    print(f"ListBackends with {options.backends} backends ({body_size} bytes), {options.connections} connections, "
          f"{options.seconds:g} s x 2 alternating runs each")
    for name, result in best.items():
        print(f"  {name:12} {result.rps:8.0f} req/s   median {result.median * 1000:6.2f} ms   "
              f"p99 {result.percentile(0.99) * 1000:6.2f} ms   errors {result.errors}")
    ratio = best["swarmkeeper"].rps / best["baseline"].rps
    print(f"  ratio swarmkeeper/baseline: {ratio:.2f} (goal: at least 0.5)")


if __name__ == "__main__":
    main()
