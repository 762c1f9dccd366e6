"""What runs inside one Ray actor of the Ray provider: one worker (a ComfyUI by default).

Only the standard library and Ray, and sent to the cluster by value (the driver registers this module
with Ray's pickler), so a cluster's nodes need Ray and the worker's own program, not swarmkeeper.

The worker's process stays in the actor's process group (no new session): Ray ends an actor's
process group when the actor is killed or dies, so a dead actor takes its worker with it and frees
its port and GPU. Placeholders in the command: ``{host}`` (the node's address in the cluster),
``{port}`` (a free port on that node), ``{python}`` (the Python that runs the actor).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def fill(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """The command with its placeholders replaced (other braces are left as they are)."""
    filled = []
    for arg in argv:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        filled.append(arg)
    return filled


class WorkerActor:
    """Starts the worker once (``start``), says where it answers (``address``), and when it ended
    (``wait_exit``; the actor runs with a few threads so that this waiting blocks no other call)."""

    def __init__(self, argv: Sequence[str], folder: str, env: Mapping[str, str]) -> None:
        self.argv = list(argv)
        self.folder = folder or None
        self.env = dict(env)
        self.child: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> dict[str, object]:
        """Start the worker (once; again only if it ended) on this node; its URL and pids."""
        import ray  # on the node, inside Ray's worker process

        if self.child is None or self.child.poll() is not None:
            host = ray.util.get_node_ip_address()
            port = free_port(host)
            argv = fill(self.argv, {"host": host, "port": str(port), "python": sys.executable})
            # Not start_new_session: the worker must stay in the actor's process group.
            self.child = subprocess.Popen(argv, cwd=self.folder, env={**os.environ, **self.env},
                                          stdin=subprocess.DEVNULL)
            url_host = f"[{host}]" if ":" in host else host
            self.url = f"http://{url_host}:{port}/"
        return self.address()

    def wait_exit(self, seconds: float) -> int | None:
        """The worker's exit code once it ended, or None if it still runs after ``seconds`` (the
        driver asks again: a call whose driver is gone ends by itself)."""
        child = self.child
        if child is None:
            return None
        try:
            return child.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def address(self) -> dict[str, object]:
        child = self.child
        return {"url": self.url, "pid": child.pid if child else None, "actor_pid": os.getpid(),
                "exit_code": child.poll() if child else None}
