"""Helpers for the ComfyUI backend tests: a server with fast timings, adding a backend through the
API, capturing backend log lines, and looking at processes."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from swarmkeeper import fds
from swarmkeeper.backends.tuning import BackendTuning, ComfyTimings
from swarmkeeper.config import ServerSettings
from swarmkeeper.files import write_atomic
from swarmkeeper.logs import VERBOSE, LogStore, LogStoreHandler
from swarmkeeper.process import tree
from swarmkeeper.process.policy import RestartPolicy
from tests.ports import port_block
from tests.servers import APIClient, in_process, test_config

FAST = ComfyTimings(timeout=2.0, monitor_interval=0.1)
QUICK_STOP = RestartPolicy(restart_delay=0.2, stop_wait=2.0, term_wait=2.0)


def write_settings(data_dir: Path, *, attempts: int = 0, first_port: int | None = None) -> int:
    """Settings.fds with few init retries and self-start ports from a block of their own
    (tests/ports.py: parallel runs must not fight over 7821); returns the first port handed out."""
    data_dir.mkdir(parents=True, exist_ok=True)
    base = first_port if first_port is not None else port_block()
    settings = ServerSettings(
        backends=dataclasses.replace(ServerSettings().backends, MaxBackendInitAttempts=attempts),
        network=dataclasses.replace(ServerSettings().network, BackendStartingPort=base))
    write_atomic(data_dir / "Settings.fds", fds.dumps(settings.to_fds()))
    return base + 1


@contextlib.contextmanager
def captured_logs(store: LogStore) -> Iterator[None]:
    """Keep backend log lines in ``store`` (``swarmkeeper serve`` sets this up for real)."""
    logger = logging.getLogger("swarmkeeper")
    handler = LogStoreHandler(store)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(VERBOSE)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.asynccontextmanager
async def comfy_server(data_dir: Path, *, timings: ComfyTimings = FAST, policy: RestartPolicy = QUICK_STOP,
                       attempts: int = 0, first_port: int | None = None) -> AsyncIterator[APIClient]:
    """An in-process server whose ComfyUI backends use short timeouts and stop waits."""
    write_settings(data_dir, attempts=attempts, first_port=first_port)
    async with in_process(test_config(data_dir)) as api:
        assert api.services is not None
        api.services.manager.services.tuning = BackendTuning(comfy=timings, restart=policy)
        with captured_logs(api.services.logs):
            yield api


async def add_backend(api: APIClient, type_id: str, title: str = "", **settings: Any) -> int:
    backend_id = int((await api.ok("AddNewBackend", type_id=type_id))["id"])
    await api.ok("EditBackend", backend_id=backend_id, title=title, settings=settings)
    return backend_id


def log_lines(api: APIClient, backend_id: int) -> list[str]:
    assert api.services is not None
    return [line.message for line in api.services.logs.recent(f"backend-{backend_id}")]


def launches(api: APIClient, backend_id: int) -> list[dict[str, Any]]:
    """What the fake ComfyUI script reported at each launch of this backend."""
    prefix = f"[ComfyUI-{backend_id}/STDOUT] FAKE-LAUNCH "
    return [json.loads(line[len(prefix):]) for line in log_lines(api, backend_id) if line.startswith(prefix)]


def process_gone(pid: int | None) -> bool:
    return pid is None or not tree.alive(tree.members(pid))


def option_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]
