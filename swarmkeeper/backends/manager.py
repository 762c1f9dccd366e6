"""The operations the BackendAPI offers, over the registry, lifecycle and store.

Each method is one SwarmUI route's behaviour (reference §3), with SwarmUI's exact error texts,
and with swarmkeeper's differences: every change is on disk before the method returns, settings
are validated before anything is touched, and the init-attempt counter resets on edit, toggle
and restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from swarmkeeper import dotnet, fds
from swarmkeeper.backends.base import BackendServices, BackendType, TypeCatalog
from swarmkeeper.backends.lifecycle import Lifecycle
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.settings import MAX_TEXT_LENGTH
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.store import BackendStore
from swarmkeeper.events import BackendEvent, EventHub, EventKind
from swarmkeeper.exceptions import APIError, SettingsError
from swarmkeeper.metrics import FreeOutcome, RestartCause
from swarmkeeper.types import BackendId

log = logging.getLogger("swarmkeeper.backends")

RESTARTABLE = (BackendStatus.RUNNING, BackendStatus.ERRORED)


def selects(selector: str, record: BackendRecord) -> bool:
    """RestartBackends/FreeBackendMemory's ``backend`` filter: ``all``, or the id's exact text."""
    return selector == "all" or selector == str(record.id)


class BackendManager:
    def __init__(self, *, types: TypeCatalog, registry: BackendRegistry, lifecycle: Lifecycle,
                 store: BackendStore, services: BackendServices, events: EventHub) -> None:
        self.types = types
        self.registry = registry
        self.lifecycle = lifecycle
        self.store = store
        self.services = services
        self.events = events
        #: Entries of the file we cannot load (unknown type, bad id): written back untouched.
        self._foreign: dict[str, fds.Section] = {}

    # --- records ---

    def _new_record(self, backend_id: BackendId, backend_type: BackendType[Any], settings: Any, *,
                    title: str = "", enabled: bool = True, parent: BackendRecord | None = None) -> BackendRecord:
        return BackendRecord(id=backend_id, type=backend_type, settings=settings, services=self.services,
                             pool=self, on_change=self._status_changed, title=title, enabled=enabled,
                             real=parent is None, parent=parent)

    def _status_changed(self, record: BackendRecord) -> None:
        log.debug("Backend #%s is now %s: %s", record.id, record.status, record.status_reason)
        self.services.metrics.status_changed(record.type.id, record.status)
        self.registry.notify()
        self._publish(EventKind.STATUS, record)

    def _publish(self, kind: EventKind, record: BackendRecord) -> None:
        self.events.publish(BackendEvent(kind, record.id, str(record.status), record.status_reason))

    def get(self, backend_id: BackendId) -> BackendRecord:
        record = self.registry.get(backend_id)
        if record is None:
            raise APIError(f"Invalid backend ID {backend_id}")
        return record

    # --- persistence ---

    def _render(self) -> fds.Section:
        entries: list[tuple[str, fds.Section]] = list(self._foreign.items())
        for record in self.registry.all():
            if record.real:
                entries.append((str(record.id), self._section_of(record)))
        root = fds.Section()
        for key, section in sorted(entries, key=lambda entry: _id_order(entry[0])):
            root.set(key, section)
        return root

    @staticmethod
    def _section_of(record: BackendRecord) -> fds.Section:
        section = fds.Section()
        section.set("type", record.type.id)
        section.set("title", record.title)
        section.set("enabled", record.enabled)
        section.set("settings", record.type.schema.to_fds(record.settings))
        return section

    async def persist(self) -> None:
        await self.store.save(self._render)

    def load(self) -> None:
        """Register every backend of the file and schedule its init (at start-up, once)."""
        root = self.store.load()
        loaded: list[BackendRecord] = []
        for key in root:
            record = self._load_entry(key, root[key])
            if record is not None:
                loaded.append(record)
        for record in loaded:
            self.registry.add(record)
        for record in loaded:
            self.lifecycle.schedule_init(record)
        log.info("Loaded %s backends from %s", len(loaded), self.store.path)

    def _load_entry(self, key: str, entry: Any) -> BackendRecord | None:
        backend_id = dotnet.parse_int(key)
        type_id = entry.get("type") if isinstance(entry, fds.Section) else None
        backend_type = self.types.get(str(type_id)) if type_id is not None else None
        if backend_id is None or backend_id < 0 or backend_type is None:
            log.warning("Backends file entry '%s' (type %s) cannot be loaded here; it is kept in the file "
                        "as it is", key, type_id)
            self._foreign[key] = entry if isinstance(entry, fds.Section) else fds.Section()
            if backend_id is not None:
                self.registry.reserve_id(backend_id)
            return None
        stored = entry.get("settings")
        settings, warnings = backend_type.schema.from_stored(stored if isinstance(stored, fds.Section) else {})
        for warning in warnings:
            log.warning("Backend #%s: %s", backend_id, warning)
        enabled = dotnet.parse_bool(dotnet.to_text(entry.get("enabled", True)))
        self.registry.reserve_id(backend_id)
        return self._new_record(backend_id, backend_type, settings, title=_title_text(entry.get("title", "")),
                                enabled=enabled is not False)

    def id_in_use(self, backend_id: BackendId) -> bool:
        return self.registry.id_taken(backend_id) or str(backend_id) in self._foreign

    # --- the routes' operations ---

    async def add(self, type_id: str) -> BackendRecord:
        backend_type = self.types.get(type_id)
        if backend_type is None:
            raise APIError(f"Invalid backend type: {type_id}")
        backend_id = self.registry.new_real_id()
        while self.id_in_use(backend_id):
            backend_id = self.registry.new_real_id()
        record = self._new_record(backend_id, backend_type, backend_type.schema.defaults())
        self.registry.add(record)
        self._publish(EventKind.ADDED, record)
        await self.persist()
        self.lifecycle.schedule_init(record)
        return record

    async def delete(self, backend_id: BackendId) -> bool:
        """Remove at once (it vanishes from lists and scheduling), save, then shut it down."""
        record = self.registry.remove(backend_id)
        if record is None:
            return False
        self._publish(EventKind.REMOVED, record)
        await self.persist()
        async with record.lock:
            await self.lifecycle.clean_shutdown(record)
            await self._remove_children(record)
        return True

    async def toggle(self, backend_id: BackendId, enabled: bool) -> bool:
        """Returns False for "No change."."""
        record = self.get(backend_id)
        if record.enabled == enabled:
            return False
        async with record.lock:
            record.enabled = enabled
            self._publish(EventKind.EDITED, record)
            await self.persist()
            record.shutdown_reserved = True
            try:
                await self.registry.wait_unsaturated(record, self.lifecycle.stopping)
                was = (record.status, record.status_reason)
                await self.lifecycle.hard_shutdown(record)
                await self._remove_children(record)
                if was[0] is BackendStatus.ERRORED:  # SwarmUI leaves an errored backend errored
                    record.set_status(*was)
                elif not enabled:
                    record.set_status(BackendStatus.DISABLED, "Disabled by the user.")
                record.init_attempts = 0
                if enabled:
                    self.lifecycle.schedule_init(record)
            finally:
                record.shutdown_reserved = False
        return True

    async def edit(self, backend_id: BackendId, title: str, settings: Mapping[str, Any],
                   new_id: BackendId = -1) -> BackendRecord:
        if new_id == backend_id:
            new_id = -1
        if new_id >= 0 and self.id_in_use(new_id):
            raise APIError(f"Backend ID {new_id} is already in use.")
        record = self.get(backend_id)
        if len(title) > MAX_TEXT_LENGTH:
            raise APIError(f"Title is too long ({len(title)} characters, the limit is {MAX_TEXT_LENGTH}).")
        try:
            new_settings = record.type.schema.overlay(record.settings, settings)
        except SettingsError as error:
            raise APIError(error.message) from None
        async with record.lock:
            await self.lifecycle.clean_shutdown(record)
            await self._remove_children(record)
            if new_id >= 0:
                if self.id_in_use(new_id):  # taken while we waited for the shutdown
                    self.lifecycle.schedule_init(record)
                    raise APIError(f"Backend ID {new_id} is already in use.")
                self._publish(EventKind.REMOVED, record)
                self.registry.rekey(record, new_id)
            record.settings = new_settings
            record.title = title
            record.modcount += 1
            record.init_attempts = 0
            self._publish(EventKind.EDITED, record)
            await self.persist()
            self.lifecycle.schedule_init(record)
        return record

    async def restart(self, selector: str, *, force: bool = False) -> int:
        """Restart the selected backends that are running or errored (any status with force);
        one after another, each shut down (awaited) and re-initialised (not awaited)."""
        count = 0
        for record in list(self.registry.all()):
            if record.removed or not selects(selector, record):
                continue
            if not force and record.status not in RESTARTABLE:
                continue
            async with record.lock:
                if force:
                    await self.lifecycle.hard_shutdown(record, kill=True)
                else:
                    await self.lifecycle.clean_shutdown(record)
                await self._remove_children(record)
                record.init_attempts = 0
                self.lifecycle.schedule_init(record)
            self.services.metrics.restarted(record.type.id, RestartCause.FORCE if force else RestartCause.USER)
            count += 1
        return count

    async def free_memory(self, selector: str, system_ram: bool) -> tuple[bool, int]:
        """Free memory on every selected running backend at once. A backend whose call fails is
        logged and not counted; the others still count (SwarmUI fails the whole request)."""
        targets = [r for r in self.registry.all()
                   if r.status is BackendStatus.RUNNING and not r.shutdown_reserved and selects(selector, r)]
        if not targets:
            return False, 0
        results = await asyncio.gather(*(r.backend.free_memory(system_ram) for r in targets), return_exceptions=True)
        for record, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("Backend #%s failed to free memory: %s", record.id, result)
            self.services.metrics.memory_freed(record.type.id, _free_outcome(result))
        return True, sum(1 for result in results if result is True)

    async def shutdown(self) -> None:
        await self.lifecycle.shutdown_all()

    # --- non-real children (ChildPool) ---

    def spawn_child(self, parent: BackendRecord, type_id: str, settings: Any, title: str) -> BackendRecord:
        backend_type = self.types.get(type_id)
        if backend_type is None:
            raise ValueError(f"Unknown backend type {type_id}")
        child = self._new_record(self.registry.new_nonreal_id(), backend_type, settings, title=title, parent=parent)
        self.registry.add(child)
        self._publish(EventKind.ADDED, child)
        self.lifecycle.schedule_init(child)
        return child

    async def remove_child(self, child: BackendRecord) -> None:
        if self.registry.remove(child.id) is not None:
            self._publish(EventKind.REMOVED, child)
        await self.lifecycle.hard_shutdown(child)

    async def _remove_children(self, parent: BackendRecord) -> None:
        for child in self.registry.children_of(parent):
            await self.remove_child(child)


def _free_outcome(result: object) -> FreeOutcome:
    if isinstance(result, BaseException):
        return FreeOutcome.FAILED
    return FreeOutcome.FREED if result is True else FreeOutcome.DECLINED


def _id_order(key: str) -> tuple[int, int | str]:
    number = dotnet.parse_int(key)
    return (0, number) if number is not None else (1, key)


def _title_text(value: Any) -> str:
    """A title read from the file (FDS types it by content, so "5" comes back as 5)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return dotnet.to_text(value)
