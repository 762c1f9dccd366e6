"""A plug-in backend type that runs ComfyUI prompts, declared as a third party would: it says so
through ``Backend.prompt_target`` and nothing in dispatch knows it. Load it with
``--backend_types tests.prompt_backend``.

``NodeList`` picks how it tells what it runs: ``own`` (it reads ``/object_info`` at init and keeps
it), ``ask`` (it keeps none: dispatch asks its client), or ``none`` (it refuses every prompt,
with a reason of its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.base import Backend, BackendType
from swarmkeeper.backends.prompts import NoPrompts, PromptTarget
from swarmkeeper.backends.settings import dropdown, text
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.errors import ComfyError
from swarmkeeper.exceptions import BackendInitError

REFUSAL = "This worker is draining: it takes no new prompts."


@dataclass(frozen=True)
class WorkerSettings:
    Address: str = text("", "The worker's ComfyUI API; blank leaves it unconfigured (disabled).")
    NodeList: str = dropdown("own", "How it tells what it runs.", [
        ("own", "Reads it at init"), ("ask", "Dispatch asks for it"), ("none", "Takes no prompts")])


class PromptWorker(Backend[WorkerSettings]):
    def __init__(self, host: Any) -> None:
        super().__init__(host)
        self.client: ComfyClient | None = None
        self.node_list: Mapping[str, Any] = {}
        self.target: PromptTarget | NoPrompts | None = None

    async def init(self) -> None:
        if not self.settings.Address:
            self.host.set_status(BackendStatus.DISABLED, "No address is set.")
            return
        client = ComfyClient(self.settings.Address, timeout=20)
        try:
            self.node_list = await client.object_info() if self.settings.NodeList == "own" else {}
        except ComfyError as error:
            await client.aclose()
            raise BackendInitError(f"The worker did not answer: {error.message}") from None
        self.client = client
        self.target = self._target(client)
        self.host.set_status(BackendStatus.RUNNING, "")

    def _target(self, client: ComfyClient) -> PromptTarget | NoPrompts:
        if self.settings.NodeList == "none":
            return NoPrompts(REFUSAL)
        own = self.settings.NodeList == "own"
        return PromptTarget(f"worker-{self.host.id}@{client.address.url}", client.address.url, lambda: self.client,
                            (lambda: self.node_list) if own else None)

    def prompt_target(self) -> PromptTarget | NoPrompts | None:
        return self.target

    async def shutdown(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()


WORKER = BackendType(id="test_prompt_worker", name="Prompt worker (tests)",
                     description="A plug-in type that runs ComfyUI prompts.", settings_class=WorkerSettings,
                     factory=PromptWorker)

BACKEND_TYPES = [WORKER]
