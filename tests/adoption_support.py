"""Helpers for the re-adoption tests: servers that keep their backends (or not) one after another
on one data folder, the record file, and a clean-up that never leaves a process behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from swarmkeeper.app import create_app
from swarmkeeper.backends.base import RECORDS_FILE
from swarmkeeper.backends.tuning import BackendTuning
from swarmkeeper.logs import LogStore
from swarmkeeper.process import tree
from swarmkeeper.process.policy import RestartPolicy
from tests.comfy_backends import FAST, QUICK_STOP, captured_logs, write_settings
from tests.servers import APIClient, ServerProcess, test_config

SELF = "comfyui_selfstart"
PLAIN = {"FrontendVersion": "None", "EnablePreviews": "false"}


@contextlib.asynccontextmanager
async def comfy_server_with(data_dir: Path, *, first_port: int, keep: bool = False,
                            policy: RestartPolicy = QUICK_STOP) -> AsyncIterator[APIClient]:
    """As tests.comfy_backends.comfy_server, with --keep_backends as asked, a fixed first port (so
    two servers in a row count ports from the same place), the timings and policy in place before
    the backends loaded from the file start, and log lines kept until the server has stopped."""
    write_settings(data_dir, first_port=first_port)
    config = test_config(data_dir, keep_backends=keep, tuning=BackendTuning(comfy=FAST, restart=policy))
    logs = LogStore()
    app = create_app(config, logs)
    with captured_logs(logs):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 123))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield APIClient(http, app.state.services)


def records(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The records in ``<data_dir>/backends-running.json`` ({} when there is no file)."""
    path = data_dir / RECORDS_FILE
    return json.loads(path.read_text())["processes"] if path.exists() else {}


def alive(pid: int | None) -> bool:
    return pid is not None and bool(tree.alive(tree.members(pid)))


def answers(url: str) -> bool:
    """The (fake or real) ComfyUI at ``url`` answers ``GET /system_stats``."""
    try:
        return httpx.get(f"{url}/system_stats", timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def kill_processes_naming(marker: str) -> list[int]:
    """SIGKILL the tree of every process whose command line names ``marker`` (a test's own
    folder); returns their pids. Never this process."""
    killed = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid != os.getpid() and any(marker in part for part in process.info["cmdline"] or ()):
            tree.kill_tree(process.pid)
            killed.append(process.pid)
    return killed


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[list[int]]:
    """Whatever the test leaves running is killed at the end, failed test or not: every process
    naming the test's folder (servers, ComfyUIs) and any pid the test appends to the list."""
    extra: list[int] = []
    try:
        yield extra
    finally:
        kill_processes_naming(str(tmp_path))
        for pid in extra:
            tree.kill_tree(pid)


def server(data_dir: Path, *args: str) -> ServerProcess:
    return ServerProcess(data_dir, "--loglevel", "Debug", *args)


async def wait_running(http: httpx.AsyncClient, session: str, backend_id: int, timeout: float) -> dict[str, Any]:
    """Poll ListBackends (through a ServerProcess) until the backend is running; fail on errored."""
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        listing = (await http.post("/API/ListBackends", json={"session_id": session})).json()
        entry = listing.get(str(backend_id), {})
        assert entry.get("status") != "errored", entry
        if entry.get("status") == "running":
            return entry
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {backend_id} did not reach running in {timeout} s: {entry}")


async def session_of(http: httpx.AsyncClient) -> str:
    return str((await http.post("/API/GetNewSession", json={})).json()["session_id"])


async def add_selfstart(http: httpx.AsyncClient, session: str, **settings: Any) -> int:
    """AddNewBackend comfyui_selfstart, then EditBackend with ``settings``, through the wire."""
    added = (await http.post("/API/AddNewBackend", json={"session_id": session, "type_id": SELF})).json()
    edited = await http.post("/API/EditBackend", json={"session_id": session, "backend_id": added["id"], "title": "",
                                                        "settings": settings})
    assert "error" not in edited.json(), edited.text
    return int(added["id"])
