"""The JSON views of backends that the API answers with (reference §2, §4.8)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from swarmkeeper.backends.record import BackendRecord, ChangeClock
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.timefmt import time_since
from swarmkeeper.types import JSONObject, RawJSON


def backend_json(record: BackendRecord, *, editor: bool, full_data: bool = False,
                 now: float | None = None) -> JSONObject:
    """One backend, keys in SwarmUI's order, then swarmkeeper's extra fields. ``editor``: the
    caller may edit backends, and sees private settings (header lines) as they are."""
    return {**_head(record, editor), **_time_fields(record, now), **_tail(record, full_data)}


def _head(record: BackendRecord, editor: bool) -> JSONObject:
    backend = record.backend
    return {
        "type": record.type.id,
        "status": str(record.status),
        "id": record.id,
        "settings": record.type.schema.public(record.settings, editor=editor),
        "modcount": record.modcount,
        "features": sorted(backend.features),
        "enabled": record.enabled,
        "title": record.title,
        "max_usages": backend.max_usages,
    }


def _time_fields(record: BackendRecord, now: float | None) -> JSONObject:
    elapsed = None if record.last_used is None else (now or time.monotonic()) - record.last_used
    return {"seconds_since_used": 0 if elapsed is None else int(elapsed), "time_since_used": time_since(elapsed)}


def _tail(record: BackendRecord, full_data: bool) -> JSONObject:
    backend = record.backend
    data: JSONObject = {}
    if record.type.t2i:
        data["can_load_models"] = backend.can_load_models
        if full_data:
            data["current_model"] = backend.current_model
    elif record.status is BackendStatus.RUNNING:
        data["can_load_models"] = False  # a remote SwarmUI reads it on every running entry (§10.2)
    data["status_reason"] = record.status_reason
    data["init_attempts"] = record.init_attempts
    data["usages"] = record.usages
    data["jobs_in_flight"] = record.usages - record.jobs_queued  # running on it now
    data["jobs_queued"] = record.jobs_queued  # sent to it, waiting in its own queue
    data["last_used"] = _wall_time(record.last_used)
    if record.parent is not None:
        data["parent_id"] = record.parent.id
    data.update(backend.extra_fields(full_data))
    return data


def _wall_time(monotonic: float | None) -> str | None:
    """A monotonic stamp as an ISO 8601 UTC time (None when never used)."""
    if monotonic is None:
        return None
    stamp = time.time() - (time.monotonic() - monotonic)
    return datetime.fromtimestamp(stamp, tz=UTC).isoformat(timespec="seconds")


_NEVER_USED = b'"seconds_since_used":0,"time_since_used":"Never"'


@dataclass(frozen=True)
class _Listing:
    """A whole ListBackends answer, and what it is valid for."""

    records: Sequence[BackendRecord]  # the registry's list it was made from (a new list after a change in membership)
    ticks: int  # the ChangeClock when it was made
    until: float  # the monotonic time a time-since-used figure in it changes
    body: RawJSON


@dataclass(frozen=True)
class _Entry:
    """One backend's whole entry in the answer, and what it is valid for."""

    version: int  # the record's version it was made from
    until: float  # the monotonic time its time-since-used figure changes (inf if never used)
    real: bool
    part: bytes  # ``"<id>":{...}``


class ListingCache:
    """ListBackends, serialised. The whole answer is reused while no record changed (the
    :class:`~swarmkeeper.backends.record.ChangeClock`), the registry's list is the same and no
    time-since-used figure has moved on a second; otherwise it is put together again from each
    backend's cached entry, rebuilt only when that backend changed (``record.version``) or its
    time-since-used moved. With 1,000 backends whose statuses move all the time (nearly every
    answer follows some change), putting it together is one look-up per backend and a join."""

    def __init__(self) -> None:
        #: (full_data, editor) -> record -> its entry
        self._entries: dict[tuple[bool, bool], dict[BackendRecord, _Entry]] = {}
        self._listings: dict[tuple[bool, bool, bool], _Listing] = {}

    def render(self, records: Sequence[BackendRecord], *, nonreal: bool, full_data: bool,
               editor: bool) -> RawJSON:
        """The answer; ``editor`` (the caller may edit backends) shows private settings unmasked."""
        now = time.monotonic()
        last = self._listings.get((nonreal, full_data, editor))
        if last is not None and last.records is records and last.ticks == ChangeClock.ticks and now < last.until:
            return last.body
        ticks = ChangeClock.ticks
        until = math.inf
        entries = self._entries.setdefault((full_data, editor), {})
        parts: list[bytes] = []
        for record in records:
            entry = entries.get(record)
            if entry is None or entry.version != record.version or now >= entry.until:
                entry = entries[record] = _entry(record, full_data, editor, now)
            if nonreal or entry.real:
                parts.append(entry.part)
                if entry.until < until:
                    until = entry.until
        if len(entries) > len(records):  # some were removed: forget their entries
            for gone in entries.keys() - set(records):
                del entries[gone]
        body = RawJSON(b"{" + b",".join(parts) + b"}")
        self._listings[(nonreal, full_data, editor)] = _Listing(records, ticks, until, body)
        return body


def _entry(record: BackendRecord, full_data: bool, editor: bool, now: float) -> _Entry:
    version = record.version
    head = _json(_head(record, editor))[1:-1]
    tail = _json(_tail(record, full_data))[1:-1]
    if record.last_used is None:
        middle, until = _NEVER_USED, math.inf
    else:
        middle = orjson.dumps(_time_fields(record, now))[1:-1]
        until = record.last_used + int(now - record.last_used) + 1
    return _Entry(version, until, record.real, b'"%d":{%s,%s,%s}' % (record.id, head, middle, tail))


def _json(value: JSONObject) -> bytes:
    """orjson's bytes; a text it refuses (a lone surrogate in a status reason) is escaped by the
    standard library instead, so one bad value never breaks ListBackends for everyone."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


_LOADING = (BackendStatus.WAITING, BackendStatus.LOADING)


def _status(status: str, css: str, message: str, any_loading: bool) -> JSONObject:
    return {"status": status, "class": css, "message": message, "any_loading": any_loading}


def aggregate_status(records: Iterable[BackendRecord]) -> JSONObject:
    """GetCurrentStatus's ``backend_status``, over text-to-image backends; the first rule that
    matches wins (reference §4.8)."""
    backends = [record for record in records if record.type.t2i]
    statuses = {record.status for record in backends}
    loading = bool(statuses & set(_LOADING))
    if not backends:
        return _status("empty", "error", "No backends present. You must configure backends in the Backends "
                       "section of the Server tab before you can continue.", False)
    if not any(record.enabled for record in backends):
        return _status("all_disabled", "error", "All backends are disabled. You must enable backends in the "
                       "Backends section of the Server tab before you can continue.", False)
    if BackendStatus.ERRORED in statuses:
        return _status("errored", "error", "Some backends have errored on the server. Check the server logs "
                       "for details.", loading)
    if BackendStatus.RUNNING in statuses and loading:
        return _status("some_loading", "warn", "Some backends are ready, but others are still loading...", True)
    if BackendStatus.RUNNING in statuses:
        return _status("running", "", "", False)
    if loading:
        return _status("loading", "soft", "Backends are still loading on the server...", True)
    if BackendStatus.DISABLED in statuses:
        return _status("disabled", "warn", "Some backends are disabled. Please enable or configure them to "
                       "continue.", False)
    if BackendStatus.IDLE in statuses:
        return _status("idle", "warn", "All backends are idle. Cannot generate until at least one backend is "
                       "running.", False)
    return _status("unknown", "error", "Something is wrong with your backends. Please check the Backends section "
                   "of the Server tab, or the server logs.", False)


def supported_features(records: Iterable[BackendRecord]) -> list[str]:
    """The union of features of enabled backends that are not idle."""
    features: set[str] = set()
    for record in records:
        if record.enabled and record.status is not BackendStatus.IDLE:
            features |= record.backend.features
    return sorted(features)
