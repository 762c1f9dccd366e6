"""The server's side of the Ray provider's driver (autoscale_ray_driver.py): the child process,
started in a session of its own, and its JSON-lines protocol: requests with ids and their answers,
workers lost unasked, and the driver's own end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: The Ray namespace of the provider's actors.
NAMESPACE = "swarmkeeper"
#: Seconds the driver may take to start and import Ray (before the connect's own time).
LOAD_SECONDS = 120.0
#: Seconds the driver gets to end after its stdin closed, before it is killed.
DRIVER_EXIT_SECONDS = 5.0


class DriverGone(Exception):
    """The driver process ended (or was never started)."""


def driver_env(address: str) -> dict[str, str]:
    """The driver's environment. A cluster on loopback (one machine, ``--node-ip-address=127.0.0.1``):
    Ray would replace 127.0.0.1 by the machine's network address unless told it may stay local."""
    host = address.removeprefix("ray://").rpartition(":")[0] or address
    local = host.strip("[]") in ("127.0.0.1", "localhost", "::1")
    return {**os.environ, **({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"} if local else {})}


@dataclass(eq=False)
class RayDriver:
    """The driver child process, and the answers it owes."""

    process: asyncio.subprocess.Process
    log: logging.Logger
    #: ``lost(name, why)``: a worker ended unasked (its actor died, or its program exited).
    lost: Callable[[str, str], None]
    #: ``ended(why)``: the driver itself ended while answers were being read (not by ``stop``).
    ended: Callable[[str], None]
    stopping: bool = False
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 0
    tail: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, address: str, log: logging.Logger, python: str, lost: Callable[[str, str], None],
                    ended: Callable[[str], None]) -> RayDriver:
        config = json.dumps({"address": address, "namespace": NAMESPACE, "parent": os.getpid()})
        process = await asyncio.create_subprocess_exec(
            python, "-m", "swarmkeeper.backends.autoscale_ray_driver", config, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
            env=driver_env(address), limit=1 << 20)
        driver = cls(process, log, lost, ended)
        assert process.stderr is not None
        driver._readers.append(asyncio.create_task(driver._read_stderr(process.stderr)))
        return driver

    async def loaded(self) -> None:
        """Until its first line: Ray is imported (a slow start on a busy machine is not the cluster's)."""
        await self._line()

    async def joined(self) -> dict[str, Any]:
        """Its next line: ``{"ready": version}`` or ``{"error": ..., "kind": ...}``."""
        first = await self._line()
        if "ready" in first:
            assert self.process.stdout is not None
            self._readers.append(asyncio.create_task(self._read_answers(self.process.stdout)))
        return first

    async def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            await self.process.wait()
            raise DriverGone(self.last_words())
        message: dict[str, Any] = json.loads(line)
        return message

    def last_words(self) -> str:
        return "; ".join(self.tail[-3:])[:500] or f"exit code {self.process.returncode}"

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").strip()
            if text:
                self.tail = [*self.tail[-19:], text]
                self.log.debug("Ray driver: %s", text)

    async def _read_answers(self, stream: asyncio.StreamReader) -> None:
        try:
            while line := await stream.readline():
                answer = json.loads(line)
                if "lost" in answer:
                    self.lost(str(answer["lost"]), str(answer.get("why", "")))
                    continue
                future = self.pending.pop(int(answer.pop("id")), None)
                if future is not None and not future.done():
                    future.set_result(answer)
        finally:
            await self.process.wait()
            gone = DriverGone(f"the Ray driver ended ({self.last_words()})")
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(gone)
            self.pending.clear()
            if not self.stopping:
                self.ended(str(gone))

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request; its answer (``error`` in it when the call failed in Ray)."""
        if not self.alive or self.process.stdin is None:
            raise DriverGone(f"the Ray driver ended ({self.last_words()})")
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        self.process.stdin.write((json.dumps({"id": self.next_id, "op": op, **fields}) + "\n").encode())
        try:
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self.pending.pop(self.next_id, None)
            raise DriverGone(f"the Ray driver ended ({self.last_words()})") from None
        return await future

    async def stop(self) -> None:
        """Close its stdin (it leaves the cluster and exits), then kill it if it lingers."""
        self.stopping = True
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(DRIVER_EXIT_SECONDS):
                await self.process.wait()
        except TimeoutError:
            self.kill()
            await self.process.wait()
        for reader in self._readers:
            reader.cancel()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
