"""An autoscaling backend's workers: each is a server a launch started at a URL, standing in the
registry as a non-real child, as SwarmUI's are.

- A SwarmUI or swarmkeeper server becomes a non-real Swarm-API control instance
  ("[Remote from <id>: <title>] Master Control Swarm Instance"), which stands up one non-real
  child per backend of the worker (so dispatch and the pool use them as any chained server's).
- A ComfyUI becomes a non-real ``comfyui_api`` child.

Which one a URL is, is found by asking it (SwarmUI's ``GetNewSession``, then ComfyUI's
``/system_stats``), again every ``probe`` seconds until it answers or the launch's time is up:
``DoRetries × per_retry`` seconds plus the connection timeout. A Swarm worker is pinged with
``AdminTakeControl`` and stopped with ``ShutdownServer``; a ComfyUI worker is pinged with
``/system_stats`` (it has no shutdown route: its launch's processes are ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from swarmkeeper.backends.autoscale_policy import WorkerView
from swarmkeeper.backends.autoscale_provider import Launched, WorkerHandle
from swarmkeeper.backends.comfyui_api import ComfyUIAPISettings
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.swarm_parent import SwarmParent
from swarmkeeper.backends.swarm_settings import TYPE_ID as SWARM_TYPE_ID
from swarmkeeper.backends.swarm_settings import Connection, SwarmSettings
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.errors import ComfyError
from swarmkeeper.clients.swarm import SwarmAPIError, SwarmClient, SwarmError, SwarmProtocolError

if TYPE_CHECKING:
    from swarmkeeper.backends.record import BackendRecord

COMFYUI_TYPE_ID = "comfyui_api"


class WorkerKind(StrEnum):
    SWARM = "swarm"  # a SwarmUI or swarmkeeper server
    COMFYUI = "comfyui"


class NotAWorker(Exception):
    """The URL answers, but neither as SwarmUI nor as ComfyUI."""


async def identify(url: str, connection: Connection) -> WorkerKind:
    """What answers at ``url``: SwarmError/ComfyError while nothing does (not up yet)."""
    try:
        swarm = SwarmClient(url, headers=connection.headers, timeout=connection.timeout)
    except ValueError as error:  # a URL the clients cannot use, though it passed the http(s) check
        raise NotAWorker(f"{url} cannot be used: {error}") from None
    try:
        await swarm.new_session(timeout=connection.timeout)
        return WorkerKind.SWARM
    except (SwarmProtocolError, SwarmAPIError):
        pass  # something answers, not as SwarmUI: perhaps a ComfyUI
    finally:
        await swarm.aclose()
    comfy = ComfyClient(url, headers=connection.headers, timeout=connection.timeout)
    try:
        await comfy.system_stats()
        return WorkerKind.COMFYUI
    except ComfyError as error:
        raise NotAWorker(f"{url} answers neither as SwarmUI nor as ComfyUI ({error})") from None
    finally:
        await comfy.aclose()


@dataclass(eq=False)
class Worker:
    """One launch's worker, from its URL to its removal."""

    number: int
    url: str
    retries: int
    handle: WorkerHandle
    #: When the launch gave its URL (monotonic).
    since: float
    kind: WorkerKind | None = None
    record: BackendRecord | None = None
    client: SwarmClient | None = field(default=None, repr=False)
    pinging: bool = False

    @classmethod
    def of(cls, number: int, launched: Launched, now: float) -> Worker:
        return cls(number, launched.url, launched.retries, launched.handle, now)

    @property
    def running(self) -> bool:
        return self.record is not None and self.record.status is BackendStatus.RUNNING

    def records(self) -> list[BackendRecord]:
        """Its record and, for a Swarm worker, the children standing for the worker's backends."""
        if self.record is None:
            return []
        backend = self.record.backend
        children = list(backend.children.values()) if isinstance(backend, SwarmParent) else []
        return [self.record, *children]

    def view(self) -> WorkerView:
        records = self.records()
        busy = any(record.usages > 0 for record in records)
        used = [record.last_used for record in records if record.last_used is not None]
        return WorkerView(self.record.id if self.record else -self.number, self.running, busy, max([self.since, *used]))

    def deadline(self, per_retry: float, connection: Connection) -> float:
        return self.since + self.retries * per_retry + connection.timeout


def title_of(parent_id: int, parent_title: str, kind: WorkerKind, number: int) -> str:
    """SwarmUI's title for a Swarm worker; the same shape for a ComfyUI one."""
    what = "Master Control Swarm Instance" if kind is WorkerKind.SWARM else f"ComfyUI worker #{number}"
    return f"[Remote from {parent_id}: {parent_title or 'Auto Scaling Backend'}] {what}"


def child_settings(kind: WorkerKind, url: str, authorization: str, other_headers: str,
                   timeout_seconds: int) -> tuple[str, object]:
    """The type id and settings of the child standing for a worker."""
    if kind is WorkerKind.COMFYUI:
        return COMFYUI_TYPE_ID, ComfyUIAPISettings(Address=url)
    return SWARM_TYPE_ID, SwarmSettings(Address=url, AuthorizationHeader=authorization, OtherHeaders=other_headers,
                                        ConnectionAttemptTimeoutSeconds=timeout_seconds)


async def ping(worker: Worker, connection: Connection) -> str | None:
    """Tell the worker it is under control (or, for a ComfyUI, see that it answers): None when it
    answered as it should, else what went wrong."""
    try:
        if worker.kind is WorkerKind.SWARM:
            if worker.client is None:
                worker.client = SwarmClient(worker.url, headers=connection.headers, timeout=connection.timeout)
            answer = await worker.client.call("AdminTakeControl", timeout=connection.timeout)
            return None if answer.get("success") is True else f"AdminTakeControl answered {str(answer)[:200]}"
        async with ComfyClient(worker.url, headers=connection.headers, timeout=connection.timeout) as comfy:
            await comfy.system_stats()
        return None
    except (SwarmError, ComfyError) as error:
        return str(error) or type(error).__name__


async def shut_down(worker: Worker, connection: Connection) -> str | None:
    """Ask a Swarm worker to shut itself down (``ShutdownServer``); what went wrong, or None."""
    if worker.kind is not WorkerKind.SWARM:
        return None
    if worker.client is None:
        worker.client = SwarmClient(worker.url, headers=connection.headers, timeout=connection.timeout)
    try:
        await worker.client.call("ShutdownServer", timeout=connection.timeout)
        return None
    except SwarmError as error:
        return str(error) or type(error).__name__


async def close_client(worker: Worker) -> None:
    client, worker.client = worker.client, None
    if client is not None:
        with contextlib.suppress(Exception):
            await client.aclose()


def monotonic() -> float:
    return time.monotonic()


async def sleep_until(deadline: float, step: float) -> None:
    await asyncio.sleep(max(0.0, min(step, deadline - monotonic())))
