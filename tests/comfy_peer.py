"""A real ComfyUI for the tests marked ``comfyui``, started by ``scripts/comfyui-peer``.

tests/conftest.py loads this module as a plugin, so every test module can ask for ``real_comfyui``
(and ``real_comfyui_2``) by name; never import the fixture into a test module: pytest would count
the import as a fixture of its own and start one more ComfyUI for that module. It is
session-scoped: one ComfyUI (about 10 s to start, 0.9 GB) serves every test of the run, and is
stopped at the end. It fails (never skips) when ComfyUI is not installed, since CI
installs it (``scripts/setup --test``). It also holds the graphs and event helpers that both
ComfyUI test modules (against the fake and against the real one) use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from swarmkeeper.clients.comfyui import BinaryEvent, ComfyClient, ComfyEvent, ComfyEvents
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "scripts" / "comfyui-peer"
#: Extra ComfyUI flags for the test instance: no paid cloud-API nodes (as object_info_noapi.json).
COMFY_ARGS = ("--disable-api-nodes",)


@dataclass(frozen=True)
class RealComfyUI:
    """A running real ComfyUI: where it listens and where its files and log are."""

    url: str
    port: int
    pid: int
    name: str
    run_dir: Path

    @property
    def log(self) -> Path:
        """ComfyUI's log (its stderr and stdout)."""
        return self.run_dir / "comfyui.log"


def peer(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/comfyui-peer`` with the given arguments."""
    return subprocess.run([str(PEER), *args], capture_output=True, text=True, timeout=timeout, check=False)


def reap_orphans() -> None:
    """Stop test instances whose pytest run died without stopping them (a killed run leaves its
    ComfyUI behind, 0.9 GB each); instances are named ``pytest-<pid of the run>-<port>``."""
    for process in psutil.process_iter(["pid", "cmdline"]):
        owner = next((m.group(1) for part in process.info["cmdline"] or ()
                      if (m := re.search(r"run/pytest-(\d+)-\d+", part))), None)
        if owner is not None and not psutil.pid_exists(int(owner)):
            with contextlib.suppress(psutil.Error):
                process.kill()


@dataclass(frozen=True)
class Starting:
    """``scripts/comfyui-peer start`` under way in the background; ``wait`` gives the ComfyUI."""

    name: str
    port: int
    process: subprocess.Popen[str]

    def wait(self, timeout: float = 180) -> RealComfyUI:
        """The running instance, or fail the test with the reason."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            pytest.fail(f"scripts/comfyui-peer start took over {timeout} s:\n{err[-3000:]}")
        if self.process.returncode != 0:
            pytest.fail(f"scripts/comfyui-peer start failed:\n{err[-3000:]}")
        run_dir = Path(peer("path", "--run-dir").stdout.strip()) / self.name
        pid = int(out.strip().splitlines()[-1])
        return RealComfyUI(f"http://127.0.0.1:{self.port}", self.port, pid, self.name, run_dir)

    def stop(self) -> None:
        """Stop it, started or not (waits for the start to end first)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.communicate(timeout=180)
        self.process.kill()
        peer("stop", "--name", self.name, "--clean", timeout=60)


def begin_start(name: str, port: int, *args: str) -> Starting:
    """Start one instance (``args`` go to ComfyUI) without waiting for it; fail if none is installed."""
    reap_orphans()
    installed = peer("path", "--main")
    if installed.returncode != 0:
        pytest.fail(f"real ComfyUI missing ({installed.stderr.strip()}); scripts/setup --test installs it")
    command = [str(PEER), "start", "--port", str(port), "--name", name, "--", *args]
    return Starting(name, port, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))


def start_real_comfyui(name: str, port: int) -> RealComfyUI:
    """Start one instance and wait for it, or fail the test with the reason."""
    return begin_start(name, port, *COMFY_ARGS).wait()


def run_name(port: int) -> str:
    """An instance's name: ``reap_orphans`` stops it if this run dies without stopping it."""
    return f"pytest-{os.getpid()}-{port}"


# --- the session's shared ComfyUIs ------------------------------------------------------------

SESSION_FIXTURES = ("real_comfyui", "real_comfyui_2")
#: The session fixtures set up so far in this run (see ``session_comfyui``).
_started: set[str] = set()
#: Session ComfyUIs started ahead of their first use, by fixture name.
_ahead: dict[str, Starting] = {}
#: The fixture names that the collected tests of this run ask for.
_wanted: set[str] = set()


def begin_ahead() -> None:
    """Start the next shared ComfyUI a collected test asks for in the background (one at a time,
    so that a loaded machine starts one ComfyUI, not all, while the tests before it run)."""
    for fixture in SESSION_FIXTURES:
        if fixture in _wanted and fixture not in _started and fixture not in _ahead:
            port = free_port()
            _ahead[fixture] = begin_start(run_name(port), port, *COMFY_ARGS)
            return


def session_comfyui(fixture: str) -> Iterator[RealComfyUI]:
    if fixture in _started:  # a session fixture runs once, unless a module imported it (a copy of it)
        pytest.fail(f"{fixture} started twice: a test module imports it; ask for it by name instead")
    _started.add(fixture)
    starting = _ahead.pop(fixture, None)
    if starting is None:
        port = free_port()
        starting = begin_start(run_name(port), port, *COMFY_ARGS)
    try:
        comfy = starting.wait()
        begin_ahead()
        yield comfy
    finally:
        peer("stop", "--name", starting.name, "--clean", timeout=60)


@pytest.fixture(scope="session")
def real_comfyui() -> Iterator[RealComfyUI]:
    """A real ComfyUI 0.3.75 on a free loopback port, CPU only, for the whole test session."""
    yield from session_comfyui("real_comfyui")


@pytest.fixture(scope="session")
def real_comfyui_2() -> Iterator[RealComfyUI]:
    """A second real ComfyUI for the session (the pool's tests need two), like ``real_comfyui``."""
    yield from session_comfyui("real_comfyui_2")


#: The mark of real-ComfyUI tests that start ComfyUIs of their own and never the session's:
#: scripts/test runs them beside the others, with the browser tests, so both halves end together.
OWN_COMFYUI = "own_comfyui"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{OWN_COMFYUI}: a comfyui test that starts its own ComfyUIs, never "
                                       "real_comfyui (scripts/test runs it beside the ones that share it)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked ``own_comfyui`` that asks for a session ComfyUI would start one more of them in
    the run beside: refused at collection."""
    for item in items:
        asked = [name for name in SESSION_FIXTURES if name in getattr(item, "fixturenames", ())]
        if item.get_closest_marker(OWN_COMFYUI) and asked:
            raise pytest.UsageError(f"{item.nodeid} is marked {OWN_COMFYUI} but asks for {', '.join(asked)}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """The first shared ComfyUI starts as soon as the tests are known, while the tests before its
    first use run; the next when it is up. Not on a pytest-xdist worker (each would start them
    whatever tests it is given), nor when no test runs."""
    option = session.config.option
    if "PYTEST_XDIST_WORKER" in os.environ or option.collectonly or option.setuponly or option.setupplan:
        return
    _wanted.update(name for item in session.items for name in SESSION_FIXTURES
                   if name in getattr(item, "fixturenames", ()))
    begin_ahead()


def pytest_sessionfinish() -> None:
    """Stop what was started ahead but never used (a run stopped early by -x or a failure)."""
    while _ahead:
        _ahead.popitem()[1].stop()


# --- graphs and event helpers shared by the ComfyUI test modules -----------------------------

RECORDINGS = ROOT / "doubles" / "swarmkeeper_doubles" / "data"


def invert_graph(color: int, prefix: str = "probe", size: int = 64) -> dict[str, Any]:
    """EmptyImage 1 → ImageInvert 2 → SaveImage 3, plus PreviewImage 4 of 1 (the recorded graph)."""
    empty = {"width": size, "height": size, "batch_size": 1, "color": color}
    return {
        "1": {"class_type": "EmptyImage", "inputs": empty},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


def ws_image_graph(color: int) -> dict[str, Any]:
    """Two 32×32 images sent over the websocket by SaveImageWebsocket (the recorded graph)."""
    empty = {"width": 32, "height": 32, "batch_size": 2, "color": color}
    return {
        "1": {"class_type": "EmptyImage", "inputs": empty},
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }


def blur_graph(color: int, size: int, blurs: int) -> dict[str, Any]:
    """EmptyImage 1 → ImageBlur 10, 11, ... → PreviewImage 99: slow, for interrupts."""
    empty = {"width": size, "height": size, "batch_size": 2, "color": color}
    graph: dict[str, Any] = {"1": {"class_type": "EmptyImage", "inputs": empty}}
    previous = "1"
    for node in range(10, 10 + blurs):
        inputs = {"image": [previous, 0], "blur_radius": 31, "sigma": 5.0}
        graph[str(node)] = {"class_type": "ImageBlur", "inputs": inputs}
        previous = str(node)
    graph["99"] = {"class_type": "PreviewImage", "inputs": {"images": [previous, 0]}}
    return graph


def unique_color() -> int:
    """A colour no earlier prompt used, so nothing is served from ComfyUI's cache."""
    return random.randrange(1, 0xFFFFFF)


def event_type(event: ComfyEvent) -> str:
    """A text event's type, or ``binary<N>`` for a binary frame of type N."""
    return f"binary{event.event_type}" if isinstance(event, BinaryEvent) else event["type"]


def recorded_types(name: str) -> list[str]:
    """The event types of a recorded websocket sequence (notes left out)."""
    frames = json.loads((RECORDINGS / name).read_text())["ws"]
    return [
        f"binary{f['event_type']}" if f["kind"] == "binary" else f["msg"]["type"] for f in frames if f["kind"] != "note"
    ]


def is_done(event: ComfyEvent, prompt_id: str) -> bool:
    """ComfyUI's last event for a prompt: ``executing`` with ``node: null``."""
    if isinstance(event, BinaryEvent) or event["type"] != "executing":
        return False
    return event["data"].get("node") is None and event["data"].get("prompt_id") == prompt_id


async def collect(events: ComfyEvents, prompt_id: str, timeout: float = 60) -> list[ComfyEvent]:
    """Every event up to and including the prompt's done marker."""
    seen: list[ComfyEvent] = []
    async with asyncio.timeout(timeout):
        while not seen or not is_done(seen[-1], prompt_id):
            seen.append(await events.recv())
    return seen


async def run_prompt(
    comfy: ComfyClient, events: ComfyEvents, graph: dict[str, Any]
) -> tuple[dict[str, Any], list[ComfyEvent]]:
    """Queue a graph for this socket's client id; return the POST answer and its events."""
    queued = await comfy.queue_prompt(graph, events.client_id)
    return queued, await collect(events, queued["prompt_id"])


@contextlib.asynccontextmanager
async def greeted_events(comfy: ComfyClient, client_id: str, **flags: bool) -> AsyncIterator[ComfyEvents]:
    """The event socket, past its greeting (``status``, and ``feature_flags`` if flags are given)."""
    async with comfy.connect_events(client_id, feature_flags=flags or None) as events:
        assert event_type(await events.recv()) == "status"
        if flags:
            assert event_type(await events.recv()) == "feature_flags"
        yield events
