"""How the pool reaches a backend, and what it knows the backend can run: only through the
:class:`~swarmkeeper.backends.prompts.PromptTarget` each backend gives (``Backend.prompt_target``),
whatever its type.

- A target with a node list of its own (a ComfyUI's ``object_info``, read at init) is judged by it;
  an empty one is not read yet, and the request waits.
- A target without one (a chained server's pool) is asked for it through its client in the
  background; the answer is kept for a minute.
- A backend without a target runs no ComfyUI prompt (with its type's reason, if it gave one).

At 1,000 backends this is asked for every backend a decision looks at and every prompt's union,
so the answers are kept: a backend's node list until its record changes (``record.version``; an
asked one is read afresh each time), and the union until a backend's node list changes (followed
through the registry's changes), so neither costs what is registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.prompts import DIRECT_PATH, PIN_HEADER, NoPrompts, PromptTarget
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.errors import ComfyError, ComfyUnreachable
from swarmkeeper.dispatch.pool.validate import as_mapping, combo_choices, input_specs
from swarmkeeper.dispatch.requests import Refusal

__all__ = ["DIRECT_PATH", "PIN_HEADER", "Target", "Targets", "merge_infos"]
log = logging.getLogger("swarmkeeper.dispatch")
#: Seconds a node list asked of a backend (a chained server's) is kept before it is asked again.
REMOTE_INFO_TTL = 60.0


@dataclass(frozen=True)
class Target:
    """One backend as the pool talks to it."""

    record: BackendRecord
    #: Identifies the connection: a new one when the backend's address changes.
    key: str
    remote: bool
    _client: Callable[[], ComfyClient | None]

    def client(self) -> ComfyClient:
        client = self._client()
        if client is None:
            raise ComfyUnreachable("The backend is not connected.")
        return client


InfoOrWhy = Mapping[str, Any] | Refusal


class Targets:
    def __init__(self, on_info: Callable[[], None] = lambda: None, registry: BackendRegistry | None = None) -> None:
        self.on_info = on_info
        #: A backend's own node list (or why none), with its record's version when read.
        self._known: dict[BackendRecord, tuple[int, InfoOrWhy]] = {}
        #: Following the registry (when given one): each enabled backend's node list, as (id, list).
        self._changes = registry.changes() if registry is not None else None
        self._infos: dict[BackendRecord, tuple[int, Mapping[str, Any]]] = {}
        #: Backends whose node list is asked of them (it changes with no change to their record).
        self._asking: set[BackendRecord] = set()
        #: Node lists asked of backends that keep none: record id -> (the target asked, the answer, when).
        self._asked: dict[int, tuple[PromptTarget, Mapping[str, Any], float]] = {}
        self._fetching: dict[int, asyncio.Task[None]] = {}
        self._union: tuple[tuple[int, ...], Mapping[str, Any]] = ((), {})

    # --- reaching a backend ---

    def of(self, record: BackendRecord) -> Target | None:
        prompt = record.backend.prompt_target()
        if not isinstance(prompt, PromptTarget):
            return None
        return Target(record, prompt.key, prompt.remote, prompt.client)

    # --- what a backend runs ---

    def info_of(self, record: BackendRecord) -> InfoOrWhy:
        """The backend's object_info, or why there is none."""
        version = record.version
        known = self._known.get(record)
        if known is not None and known[0] == version:
            return known[1]
        prompt = record.backend.prompt_target()
        if prompt is None:
            return Refusal(f"a {record.type.id} backend cannot run ComfyUI prompts")
        if isinstance(prompt, NoPrompts):
            return Refusal(prompt.reason)
        if prompt.node_list is None:
            self._asking.add(record)
            return self._asked_info(record, prompt)
        info = prompt.node_list()
        found = info if info else Refusal("its node list is not read yet", True)
        self._known[record] = (version, found)  # a backend's own node list: a change to it is a change to the record
        return found

    def _asked_info(self, record: BackendRecord, prompt: PromptTarget) -> Mapping[str, Any] | Refusal:
        known = self._asked.get(record.id)
        if known is None or known[0] is not prompt:
            self._fetch(record, prompt)
            return Refusal("its node list is not known yet (asked of it in the background)", True)
        if time.monotonic() - known[2] >= REMOTE_INFO_TTL:
            self._fetch(record, prompt)  # the one known is used meanwhile
        return known[1]

    def _fetch(self, record: BackendRecord, prompt: PromptTarget) -> None:
        if record.id in self._fetching:
            return
        task = asyncio.get_running_loop().create_task(self._fetch_info(record, prompt),
                                                      name=f"remote-info-{record.id}")
        self._fetching[record.id] = task
        task.add_done_callback(lambda _: self._fetching.pop(record.id, None))

    async def _fetch_info(self, record: BackendRecord, prompt: PromptTarget) -> None:
        client = prompt.client()
        if client is None:
            return
        try:
            info = await client.object_info()
        except (ComfyError, RuntimeError) as error:  # RuntimeError: the client was closed meanwhile
            log.warning("Could not read the node list of backend #%s (%s): %s", record.id, prompt.address,
                        getattr(error, "message", error))
            return
        self._asked[record.id] = (prompt, info, time.monotonic())
        self.on_info()

    def union(self, records: Iterable[BackendRecord]) -> Mapping[str, Any]:
        """Every node class any usable backend has; a combo input accepts any backend's choices.
        With a registry, ``records`` is its list and only the backends changed since the last call
        are looked at."""
        if self._changes is None:
            infos = [info for record in records if record.enabled and not isinstance(info := self.info_of(record),
                                                                                     Refusal)]
            return self._merged(infos)
        changed = self._changes.take() | self._asking
        if any([self._follow(record) for record in changed]) or not self._union[0]:
            return self._merged([info for _, info in sorted(self._infos.values(), key=lambda entry: entry[0])])
        return self._union[1]

    def _follow(self, record: BackendRecord) -> bool:
        """Note the backend's node list for the union: True if it changed."""
        old = self._infos.pop(record, None)
        if record.removed:
            self._known.pop(record, None)
            self._asking.discard(record)
            return old is not None
        info = self.info_of(record) if record.enabled else None
        if info is None or isinstance(info, Refusal):
            return old is not None
        self._infos[record] = (record.id, info)
        return old is None or old[0] != record.id or old[1] is not info

    def _merged(self, infos: list[Mapping[str, Any]]) -> Mapping[str, Any]:
        key = tuple(id(info) for info in infos)
        if key != self._union[0]:
            self._union = (key, merge_infos(infos))
        return self._union[1]

    async def aclose(self) -> None:
        for task in list(self._fetching.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._asked.clear()
        self._known.clear()


def merge_infos(infos: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The union of several object_info answers (the first backend's definition of a class wins,
    with the combo choices of all of them)."""
    if len(infos) == 1:
        return infos[0]
    merged: dict[str, Any] = {}
    for number, info in enumerate(infos):
        if number and info == infos[0]:  # backends alike (the usual case): one comparison in C, no merging
            continue
        for name, node in info.items():
            if name not in merged:
                merged[name] = node
            elif merged[name] is not node:
                merged[name] = _merge_node(merged[name], node)
    return merged


def _merge_node(first: Mapping[str, Any], other: Mapping[str, Any]) -> Mapping[str, Any]:
    extra = input_specs(other)
    inputs = as_mapping(first.get("input"))
    changed: dict[str, dict[str, Any]] = {}
    for group in ("required", "optional"):
        specs = as_mapping(inputs.get(group))
        for name, spec in specs.items():
            ours, theirs = combo_choices(spec), combo_choices(extra.get(name))
            if ours is None or theirs is None or set(theirs) <= set(ours):
                continue
            union = [*ours, *(value for value in theirs if value not in ours)]
            rest = list(spec[1:]) if isinstance(spec[0], list) else [{**spec[1], "options": union}]
            changed.setdefault(group, dict(specs))[name] = [union, *rest] if isinstance(spec[0], list) else \
                [spec[0], *rest]
    if not changed:
        return first
    return {**first, "input": {**inputs, **changed}}
