"""The Ray provider: each worker is a Ray actor that asks for ``GPUsPerWorker`` GPUs (plus CPUs and
custom resources) and starts one worker program (ComfyUI by default) in its own process group, so
a dead actor takes its worker with it. Ray places the actor on a node with room; while none has
room the launch waits (Ray's autoscaler, or KubeRay, adds nodes for waiting actors).

The Ray calls run in a driver process of their own (autoscale_ray_driver.py, reached through
autoscale_ray_link.py), started when the backend starts: a cluster that does not answer in time,
or whose Ray or Python version differs, is a clear reason on the backend, and killing the driver
leaves nothing behind. ``release`` kills the worker's actor (``ray.kill``, no restart). With
``KeepWorkersOnExit`` the actors are detached and named (``<prefix><number>``), survive
swarmkeeper's exit, and the next start adopts them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.autoscale_provider import Launched, LaunchFailed, Outcome, WorkerHandle
from swarmkeeper.backends.autoscale_ray_link import LOAD_SECONDS, DriverGone, RayDriver
from swarmkeeper.backends.autoscale_ray_options import RayOptions
from swarmkeeper.exceptions import BackendConfigError, BackendInitError

NOT_INSTALLED = "The Ray provider needs `pip install swarmkeeper[ray]` (Ray is not installed in this Python)."


def ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a broken or blocked install
        return False


@dataclass(eq=False)
class RayWorker:
    """One worker's actor, by name."""

    provider: RayProvider
    name: str
    #: The worker program's and its actor's process ids, on their node (logs, tests).
    pid: int | None = None
    actor_pid: int | None = None
    released: bool = False

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        await self.provider.kill(self.name)


class RayProvider:
    def __init__(self, options: RayOptions, *, prefix: str, log: logging.Logger, connect_timeout: float,
                 exiting: Callable[[], bool], lost: Callable[[WorkerHandle, str], None] = lambda handle, why: None,
                 python: str = sys.executable) -> None:
        self.options = options
        self.prefix = prefix
        self.log = log
        self.connect_timeout = connect_timeout
        self.exiting = exiting
        self.lost = lost
        self.python = python
        self.driver: RayDriver | None = None
        self._joining = asyncio.Lock()
        self.names: set[str] = set()
        #: The workers launched or adopted, by actor name (to say which one was lost).
        self.handles: dict[str, RayWorker] = {}

    def problem(self) -> str | None:
        if not ray_installed():
            return NOT_INSTALLED
        return self.options.problem()

    def keeps_workers(self) -> bool:
        return self.options.keep and self.exiting()

    async def start(self) -> list[tuple[int, Launched]]:
        """Join the cluster (BackendInitError when it does not answer in time, BackendConfigError
        on a version mismatch); the workers an earlier start left running, adopted."""
        await self.close()
        self.driver = await self._join()
        answer = await self.driver.ask("adopt", prefix=self.prefix)
        adopted = []
        for worker in answer.get("workers", []):
            name = str(worker["name"])
            if not self.options.keep:  # kept by an earlier start, KeepWorkersOnExit turned off since
                self.log.info("Ray worker %s left by an earlier start: stopping it (KeepWorkersOnExit is off)", name)
                self.names.add(name)
                await self.kill(name)
                continue
            if "error" in worker or not worker.get("url"):
                self.log.warning("Ray worker %s left by an earlier start does not answer (%s): killed it", name,
                                 worker.get("error", "no address"))
                continue
            self.log.info("Adopting Ray worker %s at %s, left running by an earlier start", name, worker["url"])
            self.names.add(name)
            number = int(name.removeprefix(self.prefix)) if name.removeprefix(self.prefix).isdigit() else 0
            handle = self.handles[name] = RayWorker(self, name, *pids_of(worker))
            adopted.append((number, Launched(str(worker["url"]), self.options.retries, handle)))
        return adopted

    async def _join(self) -> RayDriver:
        address = self.options.address or "auto"
        try:
            driver = await RayDriver.start(self.options.address, self.log, self.python, self._lost, self._driver_ended)
        except OSError as error:
            raise BackendInitError(f"Could not start the Ray driver: {error}") from None
        try:
            stage = f"The Ray driver did not load Ray within {LOAD_SECONDS:g} s."
            async with asyncio.timeout(LOAD_SECONDS):
                await driver.loaded()
            stage = f"The Ray cluster at {address} did not answer within {self.connect_timeout:g} s (RayAddress)."
            async with asyncio.timeout(self.connect_timeout):
                first = await driver.joined()
        except TimeoutError:
            driver.kill()
            await driver.stop()
            raise BackendInitError(stage) from None
        except (DriverGone, ValueError) as error:
            driver.kill()
            await driver.stop()
            raise BackendInitError(f"Could not join the Ray cluster at {address}: {error}") from None
        except asyncio.CancelledError:  # the backend was stopped while joining
            driver.kill()
            raise
        if "ready" not in first:
            await driver.stop()
            reason = " ".join(str(first.get("error", "no answer")).split())[:800]  # Ray's spans lines
            if first.get("kind") == "mismatch":
                raise BackendConfigError(f"The Ray cluster at {address} runs another Ray or Python version than "
                                         f"swarmkeeper (Ray {_local_ray()}, Python {sys.version.split()[0]}): "
                                         f"{reason}")
            raise BackendInitError(f"Could not join the Ray cluster at {address}: {reason}")
        self.log.info("Joined the Ray cluster at %s (Ray %s)", address, first["ready"])
        return driver

    async def launch(self, number: int) -> Outcome:
        name = f"{self.prefix}{number}"
        try:
            driver = await self._driver()
            self.names.add(name)
            answer = await driver.ask("launch", name=name, detached=self.options.keep, **self.options.request())
        except asyncio.CancelledError:
            await self.kill(name)
            raise
        except (DriverGone, BackendInitError, BackendConfigError) as error:
            self.names.discard(name)
            return LaunchFailed(f"Ray: {error}")
        if "error" in answer or not answer.get("url"):
            await self.kill(name)
            return LaunchFailed(f"The Ray actor {name} could not start its worker: {answer.get('error', answer)}"[:900])
        self.log.info("Ray worker %s: pid %s in actor pid %s, at %s", name, answer.get("pid"), answer.get("actor_pid"),
                      answer["url"])
        handle = self.handles[name] = RayWorker(self, name, *pids_of(answer))
        return Launched(str(answer["url"]), self.options.retries, handle)

    def _lost(self, name: str, why: str) -> None:
        handle = self.handles.get(name)
        if handle is not None and not handle.released:
            self.log.warning("Ray worker %s: %s", name, why)
            self.lost(handle, why)

    def _driver_ended(self, why: str) -> None:
        """The driver died: its actors died with it (a detached one is killed on release), so each
        worker is lost."""
        self.log.warning("Ray: %s", why)
        for handle in list(self.handles.values()):
            if not handle.released:
                self.lost(handle, why)

    async def _driver(self) -> RayDriver:
        """The driver, started again if it ended."""
        async with self._joining:
            if self.driver is None or not self.driver.alive:
                if self.driver is not None:
                    await self.driver.stop()
                self.driver = None
                self.driver = await self._join()
            return self.driver

    async def kill(self, name: str) -> None:
        self.names.discard(name)
        self.handles.pop(name, None)
        driver = self.driver
        if driver is None:
            return  # closed
        try:
            if not driver.alive:
                if not self.options.keep:
                    return  # its actor ended with the driver
                driver = await self._driver()  # a detached actor outlives the driver: join again to kill it
            answer = await driver.ask("kill", name=name)
        except (DriverGone, BackendInitError, BackendConfigError) as error:
            self.log.warning("Ray: could not kill actor %s: %s", name, error)
            return
        if "error" in answer:
            self.log.warning("Ray: could not kill actor %s: %s", name, answer["error"])

    async def close(self) -> None:
        """Kill the actors still launched (unless kept at exit), then end the driver."""
        driver, self.driver = self.driver, None
        if driver is None:
            return
        if not self.keeps_workers() and driver.alive:
            self.driver = driver
            await asyncio.gather(*(self.kill(name) for name in list(self.names)))
            self.driver = None
        self.names.clear()
        self.handles.clear()
        await driver.stop()


def _local_ray() -> str:
    try:
        from importlib.metadata import version

        return version("ray")
    except Exception:
        return "not installed"


def pids_of(answer: dict[str, Any]) -> tuple[int | None, int | None]:
    pid, actor_pid = answer.get("pid"), answer.get("actor_pid")
    return (pid if isinstance(pid, int) else None), (actor_pid if isinstance(actor_pid, int) else None)
