"""A real Ray head on loopback, owned by the test: ``ray start --head --block`` as a child in a process
group of its own, with two declared GPUs, every port chosen free, and a short temp dir (Ray's unix
sockets live there). Stopping it ends its process group and waits until every process it started
(Ray's workers included) is gone. Never ``ray stop``: that ends every Ray on the machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.ports import free_port

RAY = str(Path(sys.executable).parent / "ray")
START_SECONDS = 90.0


@dataclass
class RayHead:
    address: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log_path: Path

    def processes(self) -> list[psutil.Process]:
        """The head and everything it started (Ray's daemons, its workers, their children)."""
        try:
            head = psutil.Process(self.process.pid)
            return [head, *head.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


#: Put on the head's PYTHONPATH: in a process started with NO_SWARMKEEPER set (Ray's workers, not the
#: programs they start: WORKER_ENV unsets it), swarmkeeper cannot be imported, as on a cluster's node
#: that has only Ray and ComfyUI.
BLOCKER = """import os, sys
if os.environ.get("NO_SWARMKEEPER"):
    class NoSwarmkeeper:
        def find_spec(self, name, path=None, target=None):
            if name == "swarmkeeper" or name.startswith("swarmkeeper."):
                raise ImportError(f"{name} is not installed on this node")
            return None
    sys.meta_path.insert(0, NoSwarmkeeper())
"""
#: How a worker command run by an actor leaves the blocker behind.
WORKER_ENV = "env -u NO_SWARMKEEPER"


def start_head(gpus: int = 2, cpus: int = 2) -> RayHead:
    temp_dir = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))
    (temp_dir / "site").mkdir()
    (temp_dir / "site" / "sitecustomize.py").write_text(BLOCKER)
    port = free_port()
    args = [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--num-gpus={gpus}",
            f"--num-cpus={cpus}", f"--port={port}", "--include-dashboard=false",
            f"--dashboard-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
            "--min-worker-port=0", "--max-worker-port=0", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    log_path = temp_dir / "head.log"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "NO_SWARMKEEPER": "1",
           "PYTHONPATH": str(temp_dir / "site")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    head = RayHead(f"127.0.0.1:{port}", process, temp_dir, log_path)
    deadline = time.monotonic() + START_SECONDS
    while "Ray runtime started" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            output = head.output()
            stop_head(head)
            raise RuntimeError(f"the Ray head did not start:\n{output}")
        time.sleep(0.1)
    return head


def stop_head(head: RayHead, timeout: float = 20.0) -> None:
    """SIGINT to ``ray start --block`` (it then ends what it started; it ignores SIGTERM), then
    SIGKILL to its process group and anything it started still alive; insist none is."""
    started = head.processes()
    head.process.send_signal(signal.SIGINT)
    _, alive = psutil.wait_procs(started, timeout=timeout / 2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.process.pid, signal.SIGKILL)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    _, alive = psutil.wait_procs(alive, timeout=timeout / 2)
    head.process.wait(5)
    shutil.rmtree(head.temp_dir, ignore_errors=True)
    assert not alive, [process.pid for process in alive]


@contextlib.contextmanager
def ray_head(gpus: int = 2, cpus: int = 2) -> Iterator[RayHead]:
    head = start_head(gpus, cpus)
    try:
        yield head
    finally:
        stop_head(head)
