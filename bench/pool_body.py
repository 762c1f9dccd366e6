"""The pool's time to read a large request body, against the floor: the same ``POST`` to a bare
Starlette app (its own process, on uvicorn) that reads the body into a ``bytearray`` and parses the
JSON, alternately, in one run. The pool's server has no backends (the whole body is read and
parsed, then the prompt is refused).

    .venv/bin/python bench/pool_body.py [--mb 100] [--rounds 3]

Prints both medians and their ratio (goal: at most 1.3; reading by repeated concatenation took
30 s for 100 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pool_support import start_server  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402


def serve_floor(port: int) -> None:
    """The floor: read the body in linear time, parse it, answer as the pool refuses a prompt."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def prompt(request: Request) -> JSONResponse:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
        json.loads(bytes(raw))
        return JSONResponse({"error": {"type": "no_backends"}}, status_code=400)

    app = Starlette(routes=[Route("/prompt", prompt, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def start_floor() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--floor_port", str(port)], cwd=ROOT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.post(f"{url}/prompt", content=b"{}", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the floor server did not start")


def post_time(http: httpx.Client, url: str, body: bytes) -> float:
    start = time.perf_counter()
    answer = http.post(url, content=body, headers={"Content-Type": "application/json"})
    elapsed = time.perf_counter() - start
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "no_backends", answer.text
    return elapsed


def measure(pool_url: str, floor_url: str, body: bytes, rounds: int) -> tuple[list[float], list[float]]:
    pooled, floor = [], []
    with httpx.Client(timeout=600) as http:
        post_time(http, f"{pool_url}/prompt", body[:1024 * 1024])  # warm up both
        post_time(http, f"{floor_url}/prompt", body[:1024 * 1024])
        for _ in range(rounds):
            pooled.append(post_time(http, f"{pool_url}/prompt", body))
            floor.append(post_time(http, f"{floor_url}/prompt", body))
    return pooled, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100, help="body size in MB (at most 200, the default cap)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--floor_port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_port:
        serve_floor(args.floor_port)
        return
    body = b'{"prompt": {}}'.ljust(args.mb * 1024 * 1024)
    floor_process, floor_url = start_floor()
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(Path(data_dir))
        try:
            pooled, floor = measure(server.comfy_url, floor_url, body, args.rounds)
        finally:
            server.stop()
            floor_process.terminate()
            floor_process.wait(30)
    pool_median, floor_median = statistics.median(pooled), statistics.median(floor)
    print(f"{args.mb} MB body, {args.rounds} rounds, alternating")
    print(f"bare Starlette reader: median {floor_median * 1000:8.1f} ms")
    print(f"the pool's /prompt:    median {pool_median * 1000:8.1f} ms")
    print(f"ratio: {pool_median / floor_median:.2f} (goal: at most 1.3)")


if __name__ == "__main__":
    main()
