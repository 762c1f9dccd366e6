"""The operations the BackendAPI offers, over the registry, lifecycle and store.

Each method is one SwarmUI route's behaviour (reference §3), with SwarmUI's exact error texts,
and with swarmkeeper's differences: every change is on disk before the method returns, settings
are validated before anything is touched, and the init-attempt counter resets on edit, toggle
and restart.

A change is all or nothing, in this order: **stage, save, apply**. The change is first staged
(what its entries of Backends.fds will be: :data:`Changes`) and the file is saved with it; only
once the file holds it does it reach the registry (the record added, removed, re-keyed, edited)
and any backend get shut down or started. If the save fails, the stage is dropped and the route
answers "Could not save the backends file: ..."; the registry was never touched, no process was
started or stopped, and no later save writes the refused change.

Staged changes are part of every render from the moment they are staged (the store's group
commit may write them in another caller's write) until the moment they are applied, which is
the same synchronous step that unstages them: no render sees a change twice or not at all. A
staged id counts as in use, so nothing else takes it meanwhile. Changes to one backend hold its
lock from stage to apply, so they never interleave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, TypeAlias

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

#: A change to Backends.fds: each entry key (a backend id's text) with its new section, or None
#: for an entry that goes away.
Changes: TypeAlias = dict[str, "fds.Section | None"]


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
        #: Changes saved (or being saved) and not yet applied to the registry, by token.
        self._staged: dict[object, Changes] = {}
        #: Each backend's last file entry and what it was made from (type, title, enabled,
        #: settings), reused while those are the same objects, so the store reuses its text.
        self._entries: dict[BackendId, tuple[tuple[object, ...], fds.Section]] = {}

    # --- records ---

    def _new_record(self, backend_id: BackendId, backend_type: BackendType[Any], settings: Any, *,
                    title: str = "", enabled: bool = True, parent: BackendRecord | None = None,
                    control: bool = False) -> BackendRecord:
        return BackendRecord(id=backend_id, type=backend_type, settings=settings, services=self.services,
                             pool=self, on_change=self._status_changed, title=title, enabled=enabled,
                             real=parent is None, parent=parent, control=control)

    def _status_changed(self, record: BackendRecord) -> None:
        log.debug("Backend #%s is now %s: %s", record.id, record.status, record.status_reason)
        if record.counted_status is not record.status:  # a new reason alone is no transition
            record.counted_status = record.status
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
        """The file as it is to be: the registry, the foreign entries, and every staged change."""
        entries: dict[str, fds.Section] = dict(self._foreign)
        made: dict[BackendId, tuple[tuple[object, ...], fds.Section]] = {}
        for record in self.registry.all():
            if record.real:
                made[record.id] = self._entry_of(record)
                entries[str(record.id)] = made[record.id][1]
        self._entries = made
        for changes in self._staged.values():
            for key, section in changes.items():
                if section is None:
                    entries.pop(key, None)
                else:
                    entries[key] = section
        root = fds.Section()
        for key in sorted(entries, key=_id_order):
            root.set(key, entries[key])
        return root

    def _entry_of(self, record: BackendRecord) -> tuple[tuple[object, ...], fds.Section]:
        """The record's entry as last made, if made from the same objects (a changed setting is a
        new settings object); else made anew."""
        sources = (record.type, record.title, record.enabled, record.settings)
        known = self._entries.get(record.id)
        if known is not None and all(a is b for a, b in zip(known[0], sources, strict=True)):
            return known
        return sources, self._section_of(record)

    @staticmethod
    def _section_of(record: BackendRecord, *, title: str | None = None, settings: Any = None,
                    enabled: bool | None = None) -> fds.Section:
        """The record's entry, or what it will be with the given title, settings or enabled."""
        section = fds.Section()
        section.set("type", record.type.id)
        section.set("title", record.title if title is None else title)
        section.set("enabled", record.enabled if enabled is None else enabled)
        section.set("settings", record.type.schema.to_fds(record.settings if settings is None else settings))
        return section

    async def persist(self) -> None:
        await self.store.save(self._render)

    async def _stage_and_save(self, changes: Changes) -> object:
        """Stage ``changes`` and save the file with them; the token to :meth:`_unstage` them with,
        in the same step as they are applied. If the save fails, they are dropped and the caller
        gets an APIError saying why."""
        token = object()
        self._staged[token] = changes
        try:
            await self.persist()
        except BaseException as error:
            del self._staged[token]
            if isinstance(error, OSError):
                log.error("Could not save the backends file %s: %s; the change was not made", self.store.path, error)
                raise APIError(f"Could not save the backends file: {error.strerror or error}. "
                               "Nothing was changed.") from None
            if isinstance(error, ValueError | TypeError):  # a value FDS cannot hold: a bug, said plainly
                log.exception("Could not write the backends file %s; the change was not made", self.store.path)
                raise APIError(f"Could not save the backends file: {error}. Nothing was changed.") from None
            raise
        return token

    def _unstage(self, token: object) -> None:
        del self._staged[token]

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
        key = str(backend_id)
        return (self.registry.id_taken(backend_id) or key in self._foreign
                or any(key in changes for changes in self._staged.values()))

    # --- the routes' operations ---

    async def add(self, type_id: str) -> BackendRecord:
        backend_type = self.types.get(type_id)
        if backend_type is None:
            raise APIError(f"Invalid backend type: {type_id}")
        backend_id = self.registry.new_real_id()
        while self.id_in_use(backend_id):
            backend_id = self.registry.new_real_id()
        record = self._new_record(backend_id, backend_type, backend_type.schema.defaults())
        try:
            token = await self._stage_and_save({str(backend_id): self._section_of(record)})
        except BaseException:
            self.registry.release_id(backend_id)
            raise
        self._unstage(token)
        self.registry.add(record)
        self._publish(EventKind.ADDED, record)
        self.lifecycle.schedule_init(record)
        return record

    async def delete(self, backend_id: BackendId) -> bool:
        """Save the file without it, remove it (it vanishes from lists and scheduling), then shut
        it down; a program shutdown meanwhile still stops it (Lifecycle.retire)."""
        record = self.registry.get(backend_id)
        if record is None:
            return False
        async with record.lock:
            if record.removed:
                return False
            token = await self._stage_and_save({str(record.id): None})
            self.registry.remove(record.id)
            self._unstage(token)
            self._publish(EventKind.REMOVED, record)
            await self.lifecycle.retire(record)
            await self._remove_children(record)
        return True

    async def toggle(self, backend_id: BackendId, enabled: bool) -> bool:
        """Returns False for "No change."."""
        record = self.get(backend_id)
        if record.enabled == enabled:
            return False
        async with record.lock:
            if record.removed:
                raise APIError(f"Invalid backend ID {backend_id}")
            if record.enabled == enabled:  # the same toggle, made while we waited
                return False
            token = await self._stage_and_save({str(record.id): self._section_of(record, enabled=enabled)})
            record.enabled = enabled
            self._unstage(token)
            self._publish(EventKind.EDITED, record)
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
            if record.removed:
                raise APIError(f"Invalid backend ID {backend_id}")
            if new_id >= 0 and self.id_in_use(new_id):  # taken while we waited for the lock
                raise APIError(f"Backend ID {new_id} is already in use.")
            section = self._section_of(record, title=title, settings=new_settings)
            changes: Changes = {str(record.id): section}
            if new_id >= 0:
                changes = {str(record.id): None, str(new_id): section}
            token = await self._stage_and_save(changes)
            try:
                await self.lifecycle.clean_shutdown(record)
                await self._remove_children(record)
            finally:  # the file has the edit: the registry gets it whatever happened meanwhile
                if new_id >= 0:
                    self._publish(EventKind.REMOVED, record)
                    self.registry.rekey(record, new_id)
                record.settings = new_settings
                record.title = title
                record.modcount += 1
                record.init_attempts = 0
                self._unstage(token)
                self._publish(EventKind.EDITED, record)
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
        self.services.exiting = True
        await self.lifecycle.shutdown_all()

    # --- non-real children (ChildPool) ---

    def spawn_child(self, parent: BackendRecord, type_id: str, settings: Any, title: str, *,
                    control: bool = False) -> BackendRecord:
        backend_type = self.types.get(type_id)
        if backend_type is None:
            raise ValueError(f"Unknown backend type {type_id}")
        child = self._new_record(self.registry.new_nonreal_id(), backend_type, settings, title=title, parent=parent,
                                 control=control)
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
