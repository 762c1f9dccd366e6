"""A legitimate client's ListBackends latency while the server is abused (issue 13, point 8).

    .venv/bin/python bench/abuse.py [--slow 1000] [--uploads 4] [--upload_mb 150] [--seconds 24]

``swarmkeeper serve`` runs in a child process with accounts on (no localhost bypass, so every
loopback caller without a credential is a stranger) and 20 dummy backends; the legitimate client
holds an API key and calls from 127.0.0.1. The attack runs in another child process: ``--slow``
connections that send half a request's headers and trickle a byte now and then (reopened when the
server closes them), from ``--slow_addresses`` addresses (127.0.1.x), and ``--uploads`` anonymous
uploads of ``--upload_mb`` each (from 127.0.2.x), restarted as soon as one ends.
``--slow_addresses 1`` shows the per-address cap at work (256 held, the rest refused).

``--server_nofile 1024`` runs the server under a hard open-file limit of 1,024 (the box of issue 13):
its connection cap then drops to 512 and the slow connections fill it, so new connections are
refused (counted as errors) while the keep-alive client is still served.

The client's ListBackends latency is measured quietly first, then under attack, both over one
keep-alive connection and with a new connection per request. Prints p50/p99 of each, the ratio of
attacked to quiet p99, the server's peak RSS, and what the attack saw (the goal: p99 under attack
below 100 ms). Bounded: ``--seconds`` (at most 20,000 calls per series), and the attack stops when
the series end.
This process and the attacker raise their own open-file soft limit (resource.setrlimit) to fit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import LoadResult, post_request  # noqa: E402
from swarmkeeper import fds  # noqa: E402
from swarmkeeper.config import ServerSettings  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402

MB = 1024 * 1024
HOST = "127.0.0.1"


def raise_descriptor_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


# The attacker (its own process, so its work is not in the client's event loop).

@dataclasses.dataclass
class AttackCounts:
    slow_wanted: int = 0
    slow_opened: int = 0
    slow_closed_by_server: int = 0
    slow_answers: dict[str, int] = dataclasses.field(default_factory=dict)
    uploads_started: int = 0
    upload_answers: dict[str, int] = dataclasses.field(default_factory=dict)
    upload_resets: int = 0
    upload_bytes_sent: int = 0


async def slow_connection(port: int, source: str, counts: AttackCounts, all_open: asyncio.Event,
                          stop: asyncio.Event) -> None:
    """Half a request's headers, then a header byte every second; reopened when the server closes it
    (after 0.2 s if it was refused, so the attacker does not spin on the shared CPU)."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.5)
            continue
        counts.slow_opened += 1
        if counts.slow_opened == counts.slow_wanted:
            all_open.set()
        try:
            writer.write(b"POST /API/ListBackends HTTP/1.1\r\nHost: victim\r\nContent-Type: application/json\r\n")
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        answer = await reader.read(200)
                        status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
                        counts.slow_answers[status] = counts.slow_answers.get(status, 0) + 1
                        counts.slow_closed_by_server += 1
                        if status == "503":
                            await asyncio.sleep(0.2)
                        break
                writer.write(b"X")
        except OSError:
            counts.slow_closed_by_server += 1
        finally:
            writer.close()


def upload_head(port: int, size: int) -> bytes:
    return (f"POST /API/ListBackends HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()


async def upload(port: int, source: str, size: int, counts: AttackCounts, stop: asyncio.Event) -> None:
    """An anonymous API call with a ``size`` body, sent as fast as the server takes it (until it
    answers); again and again."""
    chunk = memoryview(b" " * MB)
    while not stop.is_set():
        counts.uploads_started += 1
        answer: asyncio.Task[bytes] | None = None
        try:
            reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
            answer = asyncio.create_task(reader.readuntil(b"\r\n"))
            writer.write(upload_head(port, size))
            sent = 0
            while sent < size and not answer.done() and not stop.is_set():
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                counts.upload_bytes_sent += len(chunk)
            async with asyncio.timeout(5):
                status = (await answer).split(b" ", 2)[1].decode()
            counts.upload_answers[status] = counts.upload_answers.get(status, 0) + 1
            writer.close()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            if answer is not None and answer.done() and not answer.exception():
                status = answer.result().split(b" ", 2)[1].decode()
                counts.upload_answers[status] = counts.upload_answers.get(status, 0) + 1
            else:
                counts.upload_resets += 1
        finally:
            if answer is not None and not answer.done():
                answer.cancel()


async def attack(port: int, slow: int, uploads: int, upload_mb: int, addresses: int) -> None:
    raise_descriptor_limit(slow + uploads + 256)
    counts = AttackCounts(slow_wanted=slow)
    stop, all_open = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(slow_connection(port, f"127.0.1.{n % addresses + 1}", counts, all_open, stop))
             for n in range(slow)]
    tasks += [asyncio.create_task(upload(port, f"127.0.2.{n + 1}", upload_mb * MB, counts, stop))
              for n in range(uploads)]
    await all_open.wait()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the parent says stop
    stop.set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(dataclasses.asdict(counts)), flush=True)


# The server and the legitimate client.

def prepare(data_dir: Path) -> str:
    """Settings (accounts on, no localhost bypass), an owner, and their API key (printed by the CLI)."""
    settings = ServerSettings()
    section = dataclasses.replace(settings.userauthorization, AllowLocalhostBypass=False)
    data_dir.mkdir(parents=True)
    (data_dir / "Settings.fds").write_text(fds.dumps(dataclasses.replace(settings,
                                                                         userauthorization=section).to_fds()))
    cli = [sys.executable, "-m", "swarmkeeper"]
    subprocess.run([*cli, "users", "add", "boss", "--role", "owner", "--password_stdin", "--data_dir", str(data_dir)],
                   input=b"a long bench passphrase\n", check=True, cwd=ROOT, capture_output=True)
    made = subprocess.run([*cli, "keys", "create", "--user", "boss", "--name", "bench", "--data_dir", str(data_dir)],
                          check=True, cwd=ROOT, capture_output=True)
    return made.stdout.decode().split()[-1]


def start_server(data_dir: Path, port: int, key: str, nofile: int) -> subprocess.Popen[bytes]:
    """The server; with ``nofile``, under that open-file limit (soft and hard), as on a box whose
    hard limit is low."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    server = subprocess.Popen([sys.executable, "-m", "swarmkeeper", "serve", "--port", str(port), "--comfy_port", "-1",
                               "--data_dir", str(data_dir), "--require_accounts", "--loglevel", "Error",
                               "--backend_types", "swarmkeeper.testing.dummy_backend"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=limit if nofile else None)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=10) as http:
        for _ in range(600):
            if server.poll() is not None:
                raise RuntimeError("the server exited")
            with contextlib.suppress(httpx.TransportError):
                if http.post("/API/ListBackends", json={}).status_code == 200:
                    break
            time.sleep(0.05)
        for _ in range(20):
            http.post("/API/AddNewBackend", json={"type_id": "swarmkeeper_dummy"}).raise_for_status()
    return server


async def one_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def series(port: int, request: bytes, seconds: float, fresh: bool, limit: int = 20000) -> LoadResult:
    """ListBackends calls one after another for ``seconds`` (at most ``limit``), over one connection
    or a new one each."""
    latencies: list[float] = []
    errors = 0
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    started = time.perf_counter()
    while time.perf_counter() - started < seconds and len(latencies) < limit:
        begun = time.perf_counter()
        if connection is None or fresh:
            if connection is not None:
                connection[1].close()
            connection = await asyncio.open_connection(HOST, port)
        try:
            errors += await one_call(*connection, request) != 200
        except (OSError, asyncio.IncompleteReadError):  # refused past the connection cap, say
            errors += 1
            connection[1].close()
            connection = None
        latencies.append(time.perf_counter() - begun)
    if connection is not None:
        connection[1].close()
    return LoadResult(len(latencies), time.perf_counter() - started, latencies, errors)


def measure(port: int, request: bytes, seconds: float) -> dict[str, LoadResult]:
    """Each series for half of ``seconds``."""
    return {"keep-alive": asyncio.run(series(port, request, seconds / 2, fresh=False)),
            "new connection": asyncio.run(series(port, request, seconds / 2, fresh=True))}


class RSSSampler:
    """The server's peak resident memory, sampled every 50 ms in a thread while in use."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--upload_mb", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=24.0,
                        help="Seconds of calls, quiet and again under attack (default 24: each series outlasts "
                             "the server's 10 s header timeout, so the slow connections are closed and reopened)")
    parser.add_argument("--slow_addresses", type=int, default=8,
                        help="Client addresses the slow connections come from (127.0.1.x; default 8, so that "
                             "all 1,000 fit under the server's per-address cap of 256)")
    parser.add_argument("--server_nofile", type=int, default=0,
                        help="Run the server under this open-file limit, soft and hard (e.g. 1024; default: as is)")
    parser.add_argument("--attack_port", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.attack_port:
        asyncio.run(attack(options.attack_port, options.slow, options.uploads, options.upload_mb,
                           options.slow_addresses))
        return
    raise_descriptor_limit(4096)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "Data"
        key = prepare(data_dir)
        port = free_port()
        server = start_server(data_dir, port, key, options.server_nofile)
        try:
            run(options, port, key, psutil.Process(server.pid))
        finally:
            server.terminate()
            server.wait(30)


def run(options: argparse.Namespace, port: int, key: str, server: psutil.Process) -> None:
    request = post_request(HOST, port, "/API/ListBackends", b"{}", {"Authorization": f"Bearer {key}"})
    measure(port, request, 1.0)  # warm-up
    with RSSSampler(server) as quiet_rss:
        quiet = measure(port, request, options.seconds)
    attacker = subprocess.Popen([sys.executable, __file__, "--attack_port", str(port), "--slow", str(options.slow),
                                 "--uploads", str(options.uploads), "--upload_mb", str(options.upload_mb),
                                 "--slow_addresses", str(options.slow_addresses)],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert attacker.stdin is not None and attacker.stdout is not None
    try:
        if attacker.stdout.readline().strip() != b"ready":
            raise RuntimeError("the attacker did not start")
        opened_at = time.monotonic()
        with RSSSampler(server) as attacked_rss:
            attacked = measure(port, request, options.seconds)
        attack_seconds = time.monotonic() - opened_at
    finally:
        attacker.stdin.write(b"stop\n")
        attacker.stdin.flush()
        counts = json.loads(attacker.stdout.readline() or b"{}")
        attacker.wait(30)
    report(options, quiet, attacked, (quiet_rss.peak, attacked_rss.peak), counts, attack_seconds)


def report(options: argparse.Namespace, quiet: dict[str, LoadResult], attacked: dict[str, LoadResult],
           rss: tuple[int, int], counts: dict[str, object], seconds: float) -> None:
    print(f"ListBackends (20 backends, API key), calls one after another for {options.seconds / 2:g} s per series; "
          f"attack: {options.slow} slow "
          f"connections and {options.uploads} anonymous {options.upload_mb} MB uploads, for {seconds:.1f} s")
    for name in quiet:
        calm, busy = quiet[name], attacked[name]
        met = busy.percentile(0.99) < 0.1 and not busy.errors
        print(f"  {name:15} quiet p50 {calm.median * 1000:6.2f} ms p99 {calm.percentile(0.99) * 1000:6.2f} ms | "
              f"attacked p50 {busy.median * 1000:6.2f} ms p99 {busy.percentile(0.99) * 1000:6.2f} ms "
              f"(x{busy.percentile(0.99) / calm.percentile(0.99):.2f}) calls {busy.requests} errors {busy.errors}  "
              f"{'goal met' if met else 'GOAL MISSED'} (p99 < 100 ms, no errors)")
    print(f"  server peak RSS: quiet {rss[0] / MB:.0f} MB, under attack {rss[1] / MB:.0f} MB")
    print(f"  attack saw: {json.dumps(counts)}")


if __name__ == "__main__":
    main()
