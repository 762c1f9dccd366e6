"""What a Swarm-API parent learns from its remote, read defensively: the remote's backends
(``ListBackends``), which of them get a child here, loop detection, and the model lists.

Loop detection across servers. SwarmUI only refuses a remote whose ``server_id`` is its own
(A → A). swarmkeeper also reports, in the ``full_data`` ListBackends entry of each Swarm-API
backend, ``swarm_chain``: the server ids that work sent to that backend passes through (for a child:
its remote server, then the chain of the remote backend it stands for). A parent never links a
remote backend whose chain holds its own server id, since that work would come back to it
(A → B → A, A → B → C → A). Real SwarmUI ignores the extra key, and entries from a real SwarmUI
carry none (there only the A → A check applies).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmkeeper.backends.swarm_settings import TYPE_ID
from swarmkeeper.clients.swarm import SwarmClient, SwarmError

#: The model categories asked for (SwarmUI's model sets that the ComfyUI backends fill).
MODEL_CATEGORIES = ("Stable-Diffusion", "VAE", "LoRA", "Embedding", "ControlNet", "ClipVision")
#: Longest chain kept from a remote entry; longer ones are cut (a chain that long is a bug).
MAX_CHAIN = 32
MAX_TEXT = 1000


@dataclass(frozen=True)
class RemoteBackend:
    """One entry of the remote's ListBackends (nonreal, full_data)."""

    id: int
    type: str
    status: str
    title: str = ""
    features: frozenset[str] = frozenset()
    max_usages: int = 1
    can_load_models: bool = False
    current_model: str | None = None
    #: Server ids that work sent to this backend passes through (swarmkeeper remotes only).
    chain: tuple[str, ...] = ()

    @property
    def control(self) -> bool:
        """A remote Swarm-API parent: a control instance that never generates."""
        return self.type == TYPE_ID and self.id >= 0


def _text(value: Any, default: str = "") -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else default


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None


def _strings(value: Any, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item[:MAX_TEXT] for item in value[:limit] if isinstance(item, str))


def read_entry(value: Any) -> RemoteBackend | None:
    """One entry, or None when it lacks what SwarmUI itself needs (an id and a status)."""
    if not isinstance(value, dict):
        return None
    backend_id, status = _integer(value.get("id")), value.get("status")
    if backend_id is None or not isinstance(status, str) or abs(backend_id) >= 2**31:
        return None
    usages = _integer(value.get("max_usages"))
    model = value.get("current_model")
    return RemoteBackend(
        id=backend_id, type=_text(value.get("type")), status=status, title=_text(value.get("title")),
        features=frozenset(_strings(value.get("features"), 4096)), max_usages=max(0, usages or 0),
        can_load_models=value.get("can_load_models") is True, current_model=model if isinstance(model, str) else None,
        chain=_strings(value.get("swarm_chain"), MAX_CHAIN))


def read_listing(data: Mapping[str, Any]) -> tuple[dict[int, RemoteBackend], int]:
    """The remote's backends by id, and how many entries could not be read (skipped)."""
    backends: dict[int, RemoteBackend] = {}
    skipped = 0
    for value in data.values():
        entry = read_entry(value)
        if entry is None:
            skipped += 1
        else:
            backends[entry.id] = entry
    return backends, skipped


@dataclass(frozen=True)
class Plan:
    """What a refresh does with the remote's list."""

    #: Running remote backends that get (or keep) a child, by remote id.
    linked: dict[int, RemoteBackend] = field(default_factory=dict)
    #: Running remote backends refused because their work would come back here, by remote id.
    loops: dict[int, RemoteBackend] = field(default_factory=dict)
    #: How many remote backends are still loading.
    loading: int = 0
    #: How many entries of the remote's list could not be read.
    skipped: int = 0

    @property
    def features(self) -> frozenset[str]:
        """The union of the linked backends' features (the parent's own ``features``)."""
        return frozenset().union(*(remote.features for remote in self.linked.values()))


def plan(remotes: Mapping[int, RemoteBackend], own_server_id: str, allow_forwarding: bool, skipped: int = 0) -> Plan:
    """SwarmUI's rule (a child per running remote backend; remote Swarm-API backends only with
    AllowForwarding), minus remote control instances, minus anything that loops back here.
    Only backends that could get a child count as loading (a remote parent that is itself
    loading would otherwise hold two servers that use each other in ``loading`` forever)."""
    linked: dict[int, RemoteBackend] = {}
    loops: dict[int, RemoteBackend] = {}
    loading = 0
    for remote in remotes.values():
        if remote.control or (remote.type == TYPE_ID and not allow_forwarding):
            continue
        if own_server_id in remote.chain:
            if remote.status == "running":
                loops[remote.id] = remote
        elif remote.status == "running":
            linked[remote.id] = remote
        elif remote.status == "loading":
            loading += 1
    return Plan(linked, loops, loading, skipped)


def short_id(server_id: str) -> str:
    return f"server {server_id[:8]}"


def loop_path(address: str, chain: tuple[str, ...], own_server_id: str) -> str:
    """``this server → http://b → server 1a2b3c4d → this server``."""
    hops = list(chain[: chain.index(own_server_id)]) if own_server_id in chain else list(chain)
    return " → ".join(["this server", address, *(short_id(hop) for hop in hops), "this server"])


def loop_reason(address: str, loops: Mapping[int, RemoteBackend], own_server_id: str) -> str:
    first = next(iter(loops.values()))
    return (f"Swarm connection loop: every running backend of {address} leads back to this server "
            f"({loop_path(address, first.chain, own_server_id)}). Remove one of the Swarm-API backends that "
            "close the loop.")


def model_names(data: Mapping[str, Any]) -> tuple[str, ...]:
    files = data.get("files")
    if not isinstance(files, list):
        raise SwarmError("The remote's model list has no 'files' array")
    names = (item.get("name") for item in files if isinstance(item, dict))
    return tuple(dict.fromkeys(name for name in names if isinstance(name, str) and name))


async def fetch_models(client: SwarmClient, *, allow_remote: bool, timeout: float,
                       log: logging.Logger) -> dict[str, tuple[str, ...]]:
    """Every category's model names, asked for concurrently (ListModels, as SwarmUI asks but with
    URLs instead of inline preview images). A category that fails is logged and left out."""

    async def one(category: str) -> tuple[str, tuple[str, ...] | None]:
        try:
            data = await client.call("ListModels", timeout=timeout, path="", depth=999, subtype=category,
                                     allowRemote=allow_remote, dataImages=False)
            return category, model_names(data)
        except SwarmError as error:
            log.warning("Failed to get %s models from remote Swarm at %s: %s", category, client.base_url,
                        error.message)
            return category, None

    results = await asyncio.gather(*(one(category) for category in MODEL_CATEGORIES))
    return {category: names for category, names in results if names is not None}
