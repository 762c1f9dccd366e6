"""What bench/soak.py is made of: fake ComfyUI processes that crash and come back on their own
port, a keep-alive API client on raw asyncio streams (cheap next to the server), the tally of
answers, errors and latencies, and the ledger of edits that checks none was lost."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from swarmkeeper.net import free_port, port_in_use

ROOT = Path(__file__).resolve().parent.parent
#: Seconds one API call may take before it counts as a timeout.
CALL_TIMEOUT = 60.0


# --- fake ComfyUIs that crash ---


@dataclass
class FakeComfy:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "swarmkeeper_doubles.fake_comfyui", "--port", str(self.port), "--job-seconds",
             "0.01"], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    async def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_in_use(self.port):
            if time.monotonic() > deadline or (self.process is not None and self.process.poll() is not None):
                raise RuntimeError(f"fake ComfyUI on port {self.port} did not come up")
            await asyncio.sleep(0.05)


class FakeFleet:
    """A few fake ComfyUI processes; :meth:`chaos` kills one now and then and starts it again on
    the same port after a short outage."""

    def __init__(self, count: int) -> None:
        self.fakes = [FakeComfy(free_port()) for _ in range(count)]
        self.crashes = 0

    async def start(self) -> None:
        for fake in self.fakes:
            fake.start()
        for fake in self.fakes:
            await fake.wait_listening()

    def stop(self) -> None:
        for fake in self.fakes:
            fake.kill()

    async def chaos(self, every: float, stop: asyncio.Event) -> None:
        rng = random.Random(7)
        while not stop.is_set():
            with_timeout = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({with_timeout}, timeout=rng.uniform(0.5, 1.5) * every)
            if done:
                return
            with_timeout.cancel()
            fake = rng.choice(self.fakes)
            fake.kill()
            self.crashes += 1
            await asyncio.sleep(rng.uniform(0.5, 3.0))  # the outage
            fake.start()
            await fake.wait_listening()

    async def all_up(self) -> None:
        for fake in self.fakes:
            if fake.process is None or fake.process.poll() is not None:
                fake.start()
            await fake.wait_listening()


# --- the API client ---


class CallError(Exception):
    """An API call that got no answer (the connection failed, or it took too long)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Client:
    """One keep-alive HTTP/1.1 connection to the server; reconnects after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, route: str, body: dict[str, Any]) -> tuple[int, Any]:
        """HTTP status and the parsed JSON answer; CallError when there is no answer."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                return await self._exchange(route, json.dumps(body).encode())
        except TimeoutError:
            self.close()
            raise CallError("timeout") from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            self.close()
            raise CallError(f"transport: {type(error).__name__}") from None

    async def _exchange(self, route: str, payload: bytes) -> tuple[int, Any]:
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._streams
        head = (f"POST /API/{route} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()
        writer.write(head + payload)
        response = await reader.readuntil(b"\r\n\r\n")
        status = int(response.split(b" ", 2)[1])
        length = next((int(line.split(b":", 1)[1]) for line in response.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = await reader.readexactly(length)
        return status, json.loads(body) if body else None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


# --- the tally ---


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    served: int = 0

    def answered(self, route: str, seconds: float, status: int, answer: Any) -> None:
        self.served += 1
        self.latencies[route].append(seconds)
        if status != 200:
            self.errors[f"{route}: HTTP {status}"] += 1
        elif isinstance(answer, dict) and "error" in answer:
            self.errors[f"{route}: error '{str(answer['error'])[:60]}'"] += 1

    def failed(self, route: str, kind: str) -> None:
        self.errors[f"{route}: {kind}"] += 1

    @property
    def server_errors(self) -> int:
        return sum(count for kind, count in self.errors.items() if "HTTP 5" in kind)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# --- the ledger of edits ---


@dataclass(frozen=True)
class Edit:
    title: str
    sent: float
    answered: float | None  # None: no answer (it may or may not have been applied)


@dataclass
class Ledger:
    """Every EditBackend sent, by backend, to check at the end that no answered edit was lost."""

    initial: dict[int, str] = field(default_factory=dict)
    edits: dict[int, list[Edit]] = field(default_factory=lambda: collections.defaultdict(list))

    def allowed_titles(self, backend_id: int) -> set[str]:
        """Titles the backend may show at the end: that of each answered edit that no later edit
        replaced (one sent after it was answered), and of any edit that got no answer. Only the
        initial title when no edit was answered."""
        edits = self.edits.get(backend_id, [])
        answered = [edit for edit in edits if edit.answered is not None]
        if not answered:
            return {self.initial[backend_id]} | {edit.title for edit in edits}
        latest = [edit for edit in answered
                  if not any(other.sent > edit.answered for other in answered)]  # type: ignore[operator]
        return {edit.title for edit in latest} | {edit.title for edit in edits if edit.answered is None}

    def lost(self, shown: dict[int, str]) -> dict[int, tuple[str, set[str]]]:
        """Backends whose shown title is not one an answered edit allows: (shown, allowed)."""
        return {backend_id: (title, allowed) for backend_id, title in shown.items()
                if title not in (allowed := self.allowed_titles(backend_id))}


def rss_of(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) the process used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def server_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}
