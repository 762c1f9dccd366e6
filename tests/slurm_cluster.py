"""A real Slurm on loopback, owned by the test session (scale-out.md §3): Debian's munged, slurmctld and
slurmd started by hand (no systemd) with a munge key, socket and slurm.conf/gres.conf of their own in
a temporary folder; one node with two fake GPUs (``gres.conf``: ``Name=gpu File=/dev/tty[0-1]``).

Client commands (srun, squeue, scancel) reach it through ``SLURM_CONF`` (``cluster.env``). ``stop``
checks with psutil that none of its processes is left: the daemons, slurmctld's slurmscriptd and the
slurmstepd per job step (init's children, their names rewritten), known as this cluster's by the file
of its folder each holds open (a log), so another session's Slurm is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.ports import free_port

NODE = "sknode1"
GPUS = 2
DAEMONS = ("munged", "slurmctld", "slurmd")
#: The names of every process a cluster runs.
NAMES = frozenset({*DAEMONS, "slurmscriptd", "slurmstepd"})


def sbin(name: str) -> str:
    """A Slurm or munge program: on PATH, or in /usr/sbin (not on a plain user's PATH)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} is not installed: run scripts/setup --test (it installs Debian's Slurm)")
    return found


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    state: str  # RUNNING, PENDING, COMPLETING...
    reason: str  # why it is pending ("Resources"), or "None"


def slurm_conf(folder: Path, controller: str, ports: tuple[int, int]) -> str:
    return "\n".join([
        "ClusterName=swarmkeepertest",
        f"SlurmctldHost={controller}(127.0.0.1)",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={folder}/munge.socket",
        f"StateSaveLocation={folder}/state",
        f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid",
        f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/log/slurmctld.log",
        f"SlurmdLogFile={folder}/log/slurmd.log",
        "ProctrackType=proctrack/pgid",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=1",
        "KillWait=2",
        "ReturnToService=2",
        "SlurmdParameters=config_overrides",  # the node's declared CPUs, whatever the machine has
        "GresTypes=gpu",
        f"NodeName={NODE} NodeHostname={controller} NodeAddr=127.0.0.1 CPUs=4 Gres=gpu:{GPUS} State=UNKNOWN",
        f"PartitionName=gpus Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


@dataclass
class SlurmCluster:
    folder: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a client command needs to reach this cluster (and nothing else's)."""
        return {"SLURM_CONF": str(self.conf)}

    # --- starting ---

    def start(self, timeout: float = 30.0) -> None:
        for sub in ("state", "spool", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        host = socket.gethostname().split(".")[0]  # slurmctld knows itself by the short name
        self.conf.write_text(slurm_conf(self.folder, host, (free_port(), free_port())))
        (self.folder / "gres.conf").write_text(f"NodeName={NODE} Name=gpu File=/dev/tty[0-{GPUS - 1}]\n")
        self._spawn("munged", "-F", "--force", f"--socket={self.folder}/munge.socket", f"--key-file={key}",
                    f"--pid-file={self.folder}/munged.pid", f"--log-file={self.folder}/log/munged.log",
                    f"--seed-file={self.folder}/munged.seed")
        self._until(lambda: (self.folder / "munge.socket").exists(), timeout, "munged made its socket")
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-f", str(self.conf), "-N", NODE)
        self._until(self._node_idle, timeout, f"node {NODE} idle")

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.folder / "log" / f"{name}.out").open("ab")
        with log:
            self.processes[name] = subprocess.Popen(
                [sbin(name), *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, **self.env})

    def _node_idle(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs()}")
        result = self.run("sinfo", "-h", "-N", "-o", "%N %T", check=False)
        return result.returncode == 0 and f"{NODE} idle" in result.stdout

    def _until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Slurm: never {what} within {timeout} s:\n{self.logs()}")
            time.sleep(0.05)

    # --- using ---

    def run(self, command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sbin(command), *args], capture_output=True, text=True, timeout=30,
                                env={**os.environ, **self.env})
        if check and result.returncode != 0:
            raise RuntimeError(f"{command} {' '.join(args)}: {result.stderr.strip()}")
        return result

    def jobs(self) -> list[Job]:
        """squeue: every job queued or running."""
        lines = self.run("squeue", "-h", "-o", "%i|%j|%T|%r").stdout.splitlines()
        return [Job(*line.split("|", 3)) for line in lines if line.strip()]

    async def queue(self) -> list[Job]:
        """squeue, without blocking the event loop (the master under test runs on it)."""
        process = await asyncio.create_subprocess_exec(
            sbin("squeue"), "-h", "-o", "%i|%j|%T|%r", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **self.env})
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"squeue: {err.decode().strip()}")
        return [Job(*line.split("|", 3)) for line in out.decode().splitlines() if line.strip()]

    async def until_queue(self, check: Callable[[list[Job]], bool], what: str, timeout: float = 30.0) -> list[Job]:
        """Poll squeue until ``check(jobs)``."""
        deadline = time.monotonic() + timeout
        while not check(jobs := await self.queue()):
            if time.monotonic() > deadline:
                raise AssertionError(f"Slurm: never {what} within {timeout} s: {jobs}")
            await asyncio.sleep(0.1)
        return jobs

    def wait_jobs(self, check: Callable[[list[Job]], bool], what: str, timeout: float = 30.0) -> list[Job]:
        deadline = time.monotonic() + timeout
        while not check(jobs := self.jobs()):
            if time.monotonic() > deadline:
                raise AssertionError(f"Slurm: never {what} within {timeout} s: {jobs}")
            time.sleep(0.1)
        return jobs

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted((self.folder / "log").glob("*")))

    # --- stopping ---

    def stop(self) -> None:
        """Cancel every job, end the daemons, and insist that nothing of this cluster runs on."""
        with contextlib.suppress(Exception):
            self.run("scancel", "--user", str(os.getuid()), check=False)
            self.wait_jobs(lambda jobs: not jobs, "ended every job", timeout=15)
        for name in reversed(DAEMONS):
            process = self.processes.pop(name, None)
            if process is not None:
                end_group(process)
        left = self.left_running()
        for leftover in left:
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        assert not left, f"Slurm processes left running: {[p.info for p in left]}"

    def left_running(self) -> list[psutil.Process]:
        """This cluster's live (not zombie) Slurm and munge processes."""
        found = []
        for process in psutil.process_iter(["pid", "name", "cmdline"]):
            try:
                if process.info["name"] in NAMES and process.status() != psutil.STATUS_ZOMBIE and any(
                        Path(opened.path).is_relative_to(self.folder) for opened in process.open_files()):
                    found.append(process)
            except psutil.Error:
                continue
        return found


def end_group(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the daemon's process group, then SIGKILL it if it is still there after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def running_cluster(folder: Path) -> Iterator[SlurmCluster]:
    cluster = SlurmCluster(folder)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
