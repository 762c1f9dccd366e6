"""The Ray provider's driver: a child process of swarmkeeper that joins the Ray cluster and does the
Ray calls, so that Ray (its threads, its signal handlers, one cluster per process, a connect that
cannot be cancelled) stays out of the server's process. Killing the driver ends the connection,
and with it every actor that is not detached.

Run as ``python -m swarmkeeper.backends.autoscale_ray_driver '<json: address, namespace, parent>'``. It
speaks JSON lines: its first line says Ray is loaded (``{"loaded": "<ray version>"}``), the next
that it joined the cluster (``{"ready": "<ray version>"}``) or why not
(``{"error": ..., "kind": "mismatch" | "connect"}``); then each request on stdin (``{"id": n,
"op": ...}``) gets one answer on stdout with the same id, in any order, and a worker that ends
unasked is told of (``{"lost": name, "why": ...}``). Ray's own output goes to stderr. Every Ray
call that waits is awaited on the driver's event loop or run in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import ray
import ray.cloudpickle

from swarmkeeper.backends import autoscale_ray_actor

#: Linux's prctl option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: Seconds an adopted actor gets to say where its worker answers.
ADDRESS_SECONDS = 10.0
#: Seconds each ``wait_exit`` call waits (then the watch asks again).
WATCH_SECONDS = 10.0
#: Threads of each actor: ``wait_exit`` calls (one per driver that watched it) beside ``start``.
ACTOR_THREADS = 4


def mismatch(error: BaseException) -> bool:
    return "version mismatch" in str(error).lower()


class Driver:
    """Answers the server's requests with Ray calls; holds the actors it launched or adopted."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.actors: dict[str, Any] = {}  # Ray's actor handles (typed loosely by Ray itself)
        self.remote_class: Any = ray.remote(autoscale_ray_actor.WorkerActor)
        self.watches: set[asyncio.Task[None]] = set()

    def say(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            task = asyncio.create_task(self.answer(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def answer(self, request: dict[str, Any]) -> None:
        try:
            reply = await getattr(self, "op_" + str(request["op"]))(request)
        except Exception as error:
            reply = {"error": f"{type(error).__name__}: {error}"}
        self.say({"id": request["id"], **reply})

    def watch(self, name: str, actor: Any) -> None:
        """Tell swarmkeeper, unasked (``{"lost": name, "why": ...}``), when the actor or its worker
        ends, unless swarmkeeper killed it."""
        task = asyncio.create_task(self._watch(name, actor))
        self.watches.add(task)
        task.add_done_callback(self.watches.discard)

    async def _watch(self, name: str, actor: Any) -> None:
        try:
            while (code := await actor.wait_exit.remote(WATCH_SECONDS)) is None:
                if self.actors.get(name) is not actor:
                    return
            why = f"its worker exited with code {code}"
        except Exception as error:
            why = f"its Ray actor ended ({type(error).__name__})"
        if self.actors.get(name) is actor:
            self.say({"lost": name, "why": why})

    async def op_launch(self, request: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"name": request["name"], "num_gpus": request["gpus"], "num_cpus": request["cpus"],
                                   "resources": request["resources"], "max_restarts": 0,
                                   "max_concurrency": ACTOR_THREADS}
        if request["detached"]:
            options["lifetime"] = "detached"
        actor = self.remote_class.options(**options).remote(request["argv"], request["folder"], request["env"])
        self.actors[request["name"]] = actor
        try:
            address: dict[str, Any] = await actor.start.remote()
        except BaseException:
            await self.op_kill({"name": request["name"]})
            raise
        self.watch(request["name"], actor)
        return address

    async def op_kill(self, request: dict[str, Any]) -> dict[str, Any]:
        actor = self.actors.pop(request["name"], None)
        if actor is None:
            try:
                actor = await asyncio.to_thread(ray.get_actor, request["name"])
            except ValueError:
                return {"killed": False}
        ray.kill(actor, no_restart=True)
        return {"killed": True}

    async def op_adopt(self, request: dict[str, Any]) -> dict[str, Any]:
        """The named actors whose names start with ``prefix``, with where their workers answer;
        those that do not say so in time are killed."""
        names = await asyncio.to_thread(ray.util.list_named_actors)
        found = []
        for name in sorted(str(name) for name in names):
            if not name.startswith(request["prefix"]):
                continue
            try:
                actor = await asyncio.to_thread(ray.get_actor, name)
                address: dict[str, Any] = await asyncio.wait_for(actor.start.remote(), ADDRESS_SECONDS)
            except Exception as error:
                found.append({"name": name, "error": f"{type(error).__name__}: {error}"})
                await self.op_kill({"name": name})
                continue
            self.actors[name] = actor
            self.watch(name, actor)
            found.append({"name": name, **address})
        return {"workers": found}


def end_with_parent(parent: int, seconds: float = 1.0) -> None:
    """Exit once the server that started this driver (``parent``) is gone, even while ``ray.init``
    blocks: on Linux the kernel's parent-death signal ends it at once; a thread that watches the
    parent is the fallback. A parent gone before this ran (while Ray was imported) ends it here."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the signal was asked for (while Ray was imported)
        os._exit(3)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(seconds)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    config = json.loads(sys.argv[1])
    end_with_parent(int(config["parent"]))
    out = os.fdopen(os.dup(1), "w")  # the protocol's own stdout; Ray's prints go to stderr
    os.dup2(2, 1)
    out.write(json.dumps({"loaded": ray.__version__}) + "\n")  # the join's own time starts now
    out.flush()
    try:
        context = ray.init(address=config["address"] or "auto", namespace=config["namespace"],
                           logging_level=logging.WARNING, log_to_driver=False, configure_logging=False)
    except Exception as error:
        out.write(json.dumps({"error": f"{type(error).__name__}: {error}",
                              "kind": "mismatch" if mismatch(error) else "connect"}) + "\n")
        out.flush()
        raise SystemExit(2) from None
    ray.cloudpickle.register_pickle_by_value(autoscale_ray_actor)
    driver = Driver(out)
    driver.say({"ready": context.ray_version if hasattr(context, "ray_version") else ray.__version__})
    asyncio.run(driver.serve())


if __name__ == "__main__":
    main()
