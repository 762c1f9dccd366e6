"""The JSON views of backends that the API answers with (reference §2, §4.8)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from swarmkeeper.api.checksum import Checksums, checksums, whole_crc
from swarmkeeper.api.gzipped import deflate_last, deflate_piece, gzip_member
from swarmkeeper.backends.record import BackendRecord, ChangeClock
from swarmkeeper.backends.registry import Changes
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.timefmt import time_since
from swarmkeeper.types import GzipJSON, JSONObject


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
#: The gzip's pieces that never change: the end of a listing, and the start of an empty one.
_CLOSE = deflate_last(b"}")
_OPEN = deflate_piece(b"{")


@dataclass(eq=False)
class _Listing:
    """A whole ListBackends answer, and what it is valid for."""

    records: Sequence[BackendRecord]  # the registry's list it was made from (a new list after a change in membership)
    ticks: int  # the ChangeClock when it was made
    until: float  # the monotonic time a time-since-used figure in it changes
    body: GzipJSON
    shown: list[BackendRecord]  # the backends in it, in order
    parts: list[bytes]  # their entries, as joined into ``body``
    index: dict[BackendRecord, int]  # where each backend shown is in ``shown``
    #: the answer this one's gzip is patched from (kept until that gzip is made): the one it was
    #: patched from, or the one that one's would have been patched from when it had no gzip made
    previous: _Listing | None = None
    moved: list[int] = field(default_factory=list)  # the positions whose entry differs from previous's
    data: list[bytes] | None = None  # its gzip's pieces, once made
    sums: Checksums | None = None  # its blocks' checksums, once its gzip is made


@dataclass(frozen=True)
class _Entry:
    """One backend's whole entry in the answer, and what it is valid for."""

    version: int  # the record's version it was made from
    until: float  # the monotonic time its time-since-used figure changes (inf if never used)
    real: bool
    part: bytes  # ``"<id>":{...}``


@dataclass(frozen=True)
class _Piece:
    """One entry deflated for the answer's gzip (api/gzipped.py), with the separator ahead of it.
    Its dictionary is the two entries ahead of it in the answer (neighbours often differ in kind:
    a running backend between two that are not), so it is kept while those two are the same."""

    part: bytes  # the entry
    before: bytes | None  # the entry just ahead of it (None: it comes first)
    before2: bytes | None  # the one ahead of that (None: there is none)
    data: bytes


_Key = tuple[bool, bool, bool]  # (nonreal, full_data, editor): what varies between callers


class ListingCache:
    """ListBackends, serialised. The whole answer is reused while no record changed (the
    :class:`~swarmkeeper.backends.record.ChangeClock`), the registry's list is the same and no
    time-since-used figure has moved on a second. Otherwise, given the registry's ``changes``, the
    last answer is patched: the entries of the backends changed since are rebuilt and put in their
    places, and the whole joined again; without them (or after a change in membership, or when a
    time-since-used figure moved) the answer is put together from each backend's cached entry,
    rebuilt only when that backend changed (``record.version``) or its time-since-used moved.

    Its gzip, for callers that accept one, is made once per answer when first asked for, from each
    entry deflated apart (kept while the entry and the two ahead of it are the same): a patched
    answer's gzip reuses the pieces of the one it was patched from, so a change costs the deflating
    of the three pieces it touched, a join and a checksum, never the whole answer."""

    def __init__(self, changes: Changes | None = None) -> None:
        self._changes = changes
        #: per view: the backends changed since its last answer (given ``changes``)
        self._pending: dict[_Key, set[BackendRecord]] = {}
        #: (full_data, editor) -> record -> its entry, and its gzip piece
        self._entries: dict[tuple[bool, bool], dict[BackendRecord, _Entry]] = {}
        self._pieces: dict[tuple[bool, bool], dict[BackendRecord, _Piece]] = {}
        self._listings: dict[_Key, _Listing] = {}

    def render(self, records: Sequence[BackendRecord], *, nonreal: bool, full_data: bool,
               editor: bool) -> GzipJSON:
        """The answer; ``editor`` (the caller may edit backends) shows private settings unmasked."""
        return self._render(records, (nonreal, full_data, editor)).body

    def answer(self, records: Sequence[BackendRecord], *, nonreal: bool, full_data: bool, editor: bool,
               gzip: bool) -> GzipJSON:
        """The answer as :meth:`render` gives it, its ``gzipped`` made first when ``gzip`` (the caller
        accepts it). Made here and now, on the event loop: a patched answer's gzip costs a few pieces;
        a view's first, every piece (~12 µs each, ~15 ms at 1,000 backends), once."""
        listing = self._render(records, (nonreal, full_data, editor))
        if gzip and listing.body.gzipped is None:
            pieces = self._pieces.setdefault((full_data, editor), {})
            data, todo, sums = _plan_gzip(listing, pieces)
            _finish_gzip(listing, pieces, data, todo, _deflate(todo), sums)
        return listing.body

    def _render(self, records: Sequence[BackendRecord], key: _Key) -> _Listing:
        now = time.monotonic()
        last = self._listings.get(key)
        if last is not None and last.records is records and last.ticks == ChangeClock.ticks and now < last.until:
            return last
        pending = self._take_pending(key)
        listing = None
        if pending is not None and last is not None and last.records is records and now < last.until:
            listing = self._patch(last, pending, key, now)
        if listing is None:
            listing = self._build(records, key, now)
        self._listings[key] = listing
        return listing

    def _take_pending(self, key: _Key) -> set[BackendRecord] | None:
        """The backends changed since this view's last answer (None: not known), and start afresh."""
        if self._changes is None:
            return None
        changed = self._changes.take()
        if changed:
            for waiting in self._pending.values():
                waiting |= changed
        pending = self._pending.get(key)
        self._pending[key] = set()
        return pending

    def _patch(self, last: _Listing, pending: set[BackendRecord], key: _Key, now: float) -> _Listing | None:
        """``last`` with the entries of ``pending`` renewed; None when the backends shown changed."""
        nonreal, full_data, editor = key
        entries = self._entries[(full_data, editor)]
        parts = last.parts.copy()
        until = last.until
        moved: list[int] = []
        for record in pending:
            entry = entries.get(record)
            if entry is None or entry.version != record.version or now >= entry.until:
                entry = entries[record] = _entry(record, full_data, editor, now)
            at = last.index.get(record)
            if (at is not None) is not (nonreal or entry.real):
                return None  # now shown, or now hidden
            if at is not None and parts[at] is not entry.part:
                parts[at] = entry.part
                moved.append(at)
                until = min(until, entry.until)
        if not moved:
            last.ticks = ChangeClock.ticks
            return last
        body = _joined(parts)
        base: _Listing | None = last
        if last.data is None:
            # ``last`` was never asked for its gzip (an identity caller's): this one's gzip is
            # patched from the one ``last`` would have been patched from, while what moved since
            # is fewer positions than the answer has (else its gzip looks at every position)
            base, moved = last.previous, [*last.moved, *moved]
            last.previous = None
            if base is None or len(moved) > len(parts):
                base, moved = None, []
        return _Listing(last.records, ChangeClock.ticks, until, body, last.shown, parts, last.index, base, moved)

    def _build(self, records: Sequence[BackendRecord], key: _Key, now: float) -> _Listing:
        nonreal, full_data, editor = key
        ticks = ChangeClock.ticks
        until = math.inf
        entries = self._entries.setdefault((full_data, editor), {})
        shown: list[BackendRecord] = []
        parts: list[bytes] = []
        for record in records:
            entry = entries.get(record)
            if entry is None or entry.version != record.version or now >= entry.until:
                entry = entries[record] = _entry(record, full_data, editor, now)
            if nonreal or entry.real:
                shown.append(record)
                parts.append(entry.part)
                if entry.until < until:
                    until = entry.until
        if len(entries) > len(records):  # some were removed: forget their entries
            pieces = self._pieces.get((full_data, editor), {})
            for gone in entries.keys() - set(records):
                del entries[gone]
                pieces.pop(gone, None)
        body = _joined(parts)
        index = {record: at for at, record in enumerate(shown)} if self._changes is not None else {}
        return _Listing(records, ticks, until, body, shown, parts, index)


def _joined(parts: list[bytes]) -> GzipJSON:
    """``{`` + the entries, comma-separated + ``}``, in one copy (each further copy of a 600 KB answer
    costs ~0.3 ms here: fresh pages)."""
    if len(parts) < 2:
        return GzipJSON(b"{" + b"".join(parts) + b"}")
    return GzipJSON(b",".join([b"{" + parts[0], *parts[1:-1], parts[-1] + b"}"]))


_Todo = list[tuple[int, bytes, bytes | None, bytes | None]]  # (position, entry, the two entries ahead)


def _plan_gzip(listing: _Listing,
               pieces: dict[BackendRecord, _Piece]) -> tuple[list[bytes], _Todo, Checksums | None]:
    """The pieces of the listing's gzip, which of them are still to be deflated, and its blocks'
    checksums. From the answer it was patched from, if that one's gzip was made, only the pieces at
    and after what moved are looked at; of those, the ones kept (same entry, same two ahead) are
    reused; and only the blocks of what moved are checksummed again."""
    shown, parts = listing.shown, listing.parts
    base, listing.previous = listing.previous, None
    if base is not None and base.data is not None:
        data = base.data.copy()
        positions: Iterable[int] = sorted({at + step for at in listing.moved for step in (0, 1, 2)
                                           if at + step < len(parts)})
        sums = checksums(parts, base.sums, listing.moved)
    else:
        data = [b""] * len(parts)
        positions = range(len(parts))
        sums = checksums(parts)
    todo: _Todo = []
    for at in positions:
        part = parts[at]
        before = parts[at - 1] if at > 0 else None
        before2 = parts[at - 2] if at > 1 else None
        piece = pieces.get(shown[at])
        if piece is not None and piece.part is part and piece.before is before and piece.before2 is before2:
            data[at] = piece.data
        else:
            todo.append((at, part, before, before2))
    return data, todo, sums


def _finish_gzip(listing: _Listing, pieces: dict[BackendRecord, _Piece], data: list[bytes], todo: _Todo,
                 made: list[bytes], sums: Checksums | None) -> None:
    for (at, part, before, before2), deflated in zip(todo, made, strict=True):
        pieces[listing.shown[at]] = _Piece(part, before, before2, deflated)
        data[at] = deflated
    listing.data = data  # complete: an answer patched from this one may start from it
    listing.sums = sums
    listing.body.gzipped = gzip_member(listing.body, [*(data or [_OPEN]), _CLOSE], whole_crc(listing.body, sums))


def _deflate(todo: _Todo) -> list[bytes]:
    """Each entry with its separator; its dictionary is exactly what the answer holds ahead of it
    (from the entry before the one just ahead, and the comma between them)."""
    return [deflate_piece(b"{" + part, None) if before is None else
            deflate_piece(b"," + part, before if before2 is None else before2 + b"," + before)
            for _, part, before, before2 in todo]


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
