"""What a backend that runs ComfyUI prompts tells dispatch (:meth:`Backend.prompt_target`).

Dispatch knows no backend type: it asks each backend for its :class:`PromptTarget` and uses only
that. A type runs prompts by answering with one; a type that never does answers None (the
default); one that could but cannot now (a chained server's child without its remote, a control
instance) answers :class:`NoPrompts` with the reason users see.

    address      where prompts go: the root of a ComfyUI API (a ComfyUI, or a server's pool)
    client       how to send, follow and free: a ComfyClient on that address (None while it is
                 not connected); the pool queues, watches events, interrupts, reads history and
                 sends ``POST /free`` through it
    node_list    what it can run: its ``/object_info`` (empty until read); None when the backend
                 keeps none, and dispatch asks the client for it (kept a minute). Dispatch keeps
                 the answer until the record changes: a backend that holds a new node list says so
                 (a Tracked field, or ``host.changed()``)
    key          names the connection: a new key when the address changes (dispatch then opens a
                 new event link)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmkeeper.clients.comfyui import ComfyClient

#: SwarmUI's path of a server's ComfyUI-compatible pool, and the header that pins a call there to
#: one backend id: how prompts reach a backend of another server.
DIRECT_PATH = "/ComfyBackendDirect"
PIN_HEADER = "X-Swarm-Backend-ID"


@dataclass(frozen=True)
class PromptTarget:
    """One backend as dispatch sends prompts to it."""

    key: str
    address: str
    client: Callable[[], ComfyClient | None]
    node_list: Callable[[], Mapping[str, Any]] | None = None
    #: A chained server's pool rather than one ComfyUI.
    remote: bool = False


@dataclass(frozen=True)
class NoPrompts:
    """Why a backend of a type that runs prompts cannot take any (now, or as a control instance)."""

    reason: str
