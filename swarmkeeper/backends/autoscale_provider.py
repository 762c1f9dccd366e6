"""What the autoscaling backend asks of a provider: launch one worker and say where it answers,
or say why not; later, release what a launch left running.

The script provider (autoscale_script.py, SwarmUI's protocol) is one; the Ray provider
(autoscale_ray.py, an actor per worker) another: ``start`` joins the cluster (and finds the workers
an earlier start left running), ``launch`` creates an actor and returns its address, ``release``
kills it, ``close`` ends what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class WorkerHandle(Protocol):
    """What a launch left running (a script's process, an actor)."""

    async def release(self) -> None:
        """The worker is done with (stopped, or lost): end whatever of it still runs. Safe twice."""
        ...


@dataclass(frozen=True)
class Launched:
    """A worker is starting at ``url``; ``retries`` is how long it may take to answer (SwarmUI's
    DoRetries: each retry allows 5 more seconds)."""

    url: str
    retries: int
    handle: WorkerHandle


@dataclass(frozen=True)
class LaunchFailed:
    """No worker: ``reason`` says why, in words a user can act on. ``declared``: the provider said
    it has no capacity now (DeclareFailed), as opposed to a launch that broke."""

    reason: str
    declared: bool = False


Outcome = Launched | LaunchFailed


class Provider(Protocol):
    def problem(self) -> str | None:
        """Why no launch can work as configured (a missing script), or None. Checked at init."""
        ...

    async def start(self) -> list[tuple[int, Launched]]:
        """Get ready to launch (join a cluster): raises BackendInitError (may pass) or
        BackendConfigError (cannot work as configured). Returns the workers an earlier start of this
        server left running, with their numbers, to adopt."""
        ...

    async def launch(self, number: int) -> Outcome:
        """Launch worker number ``number`` (counting from 1 per server). Never raises for a failed
        launch; a launch that fails leaves nothing running."""
        ...

    def keeps_workers(self) -> bool:
        """True when its workers are to be left running now (the Ray provider's KeepWorkersOnExit,
        at the program's exit): the backend then neither stops nor releases them."""
        ...

    async def close(self) -> None:
        """End everything its launches left running (the backend shuts down), but the workers it keeps."""
        ...
