"""A process and everything it started (psutil): signal them, kill them, see what is left.

A self-started ComfyUI may be a shell script that starts Python, which may start helpers of its
own; stopping only the first process would leave orphans. Children are found by walking the
process table (they may have left the process group), and the group is signalled too.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def members(pid: int) -> list[psutil.Process]:
    """The process and its descendants that are alive now (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (zombies count as gone: only their parent's wait is missing)."""
    living = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
    return living


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid`` (a child started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def kill(processes: list[psutil.Process]) -> None:
    """SIGKILL each of them (those already gone are skipped)."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


def kill_tree(pid: int, known: list[psutil.Process] | None = None) -> None:
    """SIGKILL the process, its group, its descendants, and any of ``known`` still alive."""
    targets = members(pid) + list(known or [])
    signal_group(pid, signal.SIGKILL)
    kill(targets)
