"""Start scripts for autoscaling tests (they start fake ComfyUIs or swarmkeeper workers on loopback and
print SwarmUI's protocol lines), a Backends.fds as SwarmUI writes it, and process-tree checks."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from swarmkeeper.backends.autoscale_timings import AutoscaleTimings
from tests.servers import ROOT, APIClient

FAST = AutoscaleTimings(tick=0.1, ping=0.5, probe=0.1, per_retry=1.0, grace=2.0)
PY = sys.executable
FREE_PORT = f"{PY} -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"


def protocol(text: str) -> str:
    return f'echo "[SwarmAutoScaleBackend]{text}[/SwarmAutoScaleBackend]"\n'


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def comfy_worker_script(folder: Path, name: str = "comfy-worker.sh") -> Path:
    """A worker that is a fake ComfyUI (the script becomes it: exec)."""
    return write_script(folder / name, f"PORT=$({FREE_PORT})\n" + protocol("DoRetries: 3")
                        + protocol("NewURL: http://127.0.0.1:$PORT/")
                        + f"exec {PY} -m swarmkeeper_doubles.fake_comfyui --port $PORT\n")


def swarm_worker_script(folder: Path, control_minutes: float, name: str = "swarm-worker.sh") -> Path:
    """A worker that is a swarmkeeper server (its own data folder, --no_persist, --require_control_within)."""
    return write_script(folder / name, f"PORT=$({FREE_PORT})\nDATA=$(mktemp -d {folder}/worker-XXXXXX)\n"
                        + protocol("DoRetries: 10") + protocol("NewURL: http://127.0.0.1:$PORT")
                        + f"cd {ROOT}\nexec {PY} -m swarmkeeper serve --port $PORT --data_dir $DATA --comfy_port -1 "
                          f"--no_persist true --lock_settings true --require_control_within {control_minutes}\n")


def chained_worker_script(folder: Path, name: str = "chained-worker.sh") -> Path:
    """A swarmkeeper worker with a fake ComfyUI of its own as its backend (started beside it, in the
    script's process group)."""
    fds_text = ("0:\n\ttype: comfyui_api\n\ttitle: gpu\n\tenabled: true\n\tsettings:\n"
                "\t\tAddress: http://127.0.0.1:$CPORT\n")
    return write_script(folder / name, f"PORT=$({FREE_PORT})\nCPORT=$({FREE_PORT})\n"
                        f"DATA=$(mktemp -d {folder}/worker-XXXXXX)\n"
                        f"{PY} -m swarmkeeper_doubles.fake_comfyui --port $CPORT &\n"
                        f'printf "{fds_text}" > $DATA/Backends.fds\n'
                        + protocol("DoRetries: 10") + protocol("NewURL: http://127.0.0.1:$PORT")
                        + f"cd {ROOT}\nexec {PY} -m swarmkeeper serve --port $PORT --data_dir $DATA --comfy_port -1 "
                          f"--no_persist true --lock_settings true --require_control_within 1\n")


def swarmui_backends_fds(script: Path, **settings: Any) -> str:
    """A Backends.fds as SwarmUI writes an Auto Scaling Backend: tab-indented, comments first."""
    values = {"MaxBackends": 5, "MinBackends": 0, "MinWaitBetweenStart": 1, "MinWaitAfterFailure": 2,
              "MinWaitBetweenStop": 1, "MinIdleTime": 10, "MinQueuedBeforeExpand": 10, "StartScript": str(script),
              "AuthorizationHeader": "", "OtherHeaders": "", "ConnectionAttemptTimeoutSeconds": 30, **settings}
    lines = ["0:", "\ttype: autoscalingbackend", "\ttitle: Farm", "\tenabled: true", "\tsettings:"]
    for name, value in values.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value) or "\\x"  # FDS's empty text
        lines += [f"\t\t#The {name} setting.", f"\t\t{name}: {text}"]
    return "\n".join(lines) + "\n"


def workers_of(listing: dict[str, Any], parent: int = 0) -> list[dict[str, Any]]:
    prefix = f"[Remote from {parent}: "
    return [entry for entry in listing.values() if str(entry.get("title", "")).startswith(prefix)]


async def wait_for(api: APIClient, check: Any, timeout: float = 30.0, what: str = "") -> dict[str, Any]:
    """Poll ListBackends (non-real included) until ``check(listing)`` is true."""
    deadline = time.monotonic() + timeout
    listing: dict[str, Any] = {}
    while time.monotonic() < deadline:
        listing = await api.ok("ListBackends", nonreal=True, full_data=True)
        if check(listing):
            return listing
        await asyncio.sleep(0.1)
    raise AssertionError(f"never {what}: {listing}")


def left_running(folder: Path) -> list[psutil.Process]:
    """Processes whose command line mentions the test's folder, or that run in it (the scripts and
    the fake ComfyUIs they became)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.pid == os.getpid() or process.status() == psutil.STATUS_ZOMBIE:
                continue
            if str(folder) in cmdline or process.cwd() == str(folder):
                found.append(process)
        except psutil.Error:
            continue
    return found


async def none_left(folder: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (left := left_running(folder)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not left, [p.info["cmdline"] for p in left]
