"""API keys: ``swk_<id>_<secret>``, sent as ``Authorization: Bearer swk_...``.

The id (12 hex digits) is public: ``swk_<id>`` is the prefix listings show. The secret (32 random
bytes, URL-safe base64) is shown once, at creation; the database keeps its SHA-256 (and the server
caches a key's row for a second, see cache.py: a revocation made here applies at once, one made
by the CLI while the server runs within that second). Checking a key
always hashes the secret and compares in constant time against a stored hash (a stand-in one when
the id is unknown), so a wrong key costs what a right one does.

A key acts as its user, narrowed to its role if it has one. Sessions opened with a key
(GetNewSession) stay bound to it: they carry its narrower role and end when it is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from swarmkeeper.accounts.cache import RowCache
from swarmkeeper.db import Database
from swarmkeeper.types import JSONObject

PREFIX = "swk_"
MAX_TEXT = 200
_KEY = re.compile(r"swk_([0-9a-f]{12})_([A-Za-z0-9_-]{32,128})")
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
TOUCH_INTERVAL = 60.0


class KeyStatus(Enum):
    VALID = "valid"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"  # no such id, or the secret does not match
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ParsedKey:
    id: str
    secret: str = field(repr=False)


def looks_like_key(text: str) -> bool:
    """Whether a bearer value is meant as a swarmkeeper key (other values are not ours)."""
    return text.startswith(PREFIX)


def parse_key(text: str) -> ParsedKey | None:
    if len(text) > MAX_TEXT:
        return None
    match = _KEY.fullmatch(text)
    return ParsedKey(match.group(1), match.group(2)) if match else None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(stored_hash: str, secret: str) -> bool:
    """Constant-time: the time does not depend on where (or whether) the hashes differ."""
    return hmac.compare_digest(stored_hash.encode(), secret_hash(secret).encode())


@dataclass(frozen=True)
class APIKey:
    id: str
    user: str
    name: str
    role: str
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.id}"

    def describe(self) -> JSONObject:
        return {"id": self.id, "prefix": self.prefix, "name": self.name, "user": self.user, "role": self.role,
                "created": self.created, "expires": self.expires, "revoked": self.revoked,
                "last_used": self.last_used}


@dataclass(frozen=True)
class KeyCheck:
    status: KeyStatus
    key: APIKey | None = None


_COLUMNS = "id, user_name, name, role, created, expires, revoked, last_used"


class KeyStore:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._touched: dict[str, float] = {}
        self._sessions: dict[str, str] = {}  # session id -> key id
        #: key id -> (the key, its secret's hash), or None for "no such key"; see cache.py.
        self.cache: RowCache[str, tuple[APIKey, str] | None] = RowCache()

    async def load(self) -> None:
        """Read the key-bound sessions, forgetting those whose session has ended."""
        await self.db.execute("DELETE FROM api_key_sessions WHERE session_id NOT IN (SELECT id FROM sessions)")
        rows = await self.db.fetch_all("SELECT session_id, key_id FROM api_key_sessions")
        self._sessions = {row["session_id"]: row["key_id"] for row in rows}

    async def create(self, user: str, name: str, role: str, expires: float | None) -> tuple[APIKey, str]:
        """A new key and its full text (shown once, never stored)."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        key = APIKey(key_id, user, name, role, self.clock(), expires, None, None)
        await self.db.execute(
            f"INSERT INTO api_keys ({_COLUMNS}, secret_hash) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
            (key.id, user, name, role, key.created, expires, secret_hash(secret)))
        self.cache.drop(key_id)
        return key, f"{PREFIX}{key_id}_{secret}"

    async def _row(self, key_id: str) -> tuple[APIKey, str] | None:
        hit, entry = self.cache.get(key_id)
        if hit:
            return entry
        generation = self.cache.generation
        row = await self.db.fetch_one(f"SELECT {_COLUMNS}, secret_hash FROM api_keys WHERE id = ?", (key_id,))
        entry = (APIKey(*tuple(row)[:8]), row["secret_hash"]) if row is not None else None
        self.cache.put(key_id, entry, generation)
        return entry

    async def get(self, key_id: str) -> APIKey | None:
        entry = await self._row(key_id)
        return entry[0] if entry is not None else None

    async def listing(self, user: str | None = None) -> list[APIKey]:
        if user is None:
            rows = await self.db.fetch_all(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, id")
        else:
            rows = await self.db.fetch_all(f"SELECT {_COLUMNS} FROM api_keys WHERE user_name = ? ORDER BY created, id",
                                           (user,))
        return [APIKey(*row) for row in rows]

    async def count_with_role(self, role: str) -> int:
        """Keys narrowed to ``role`` that are not revoked."""
        row = await self.db.fetch_one("SELECT COUNT(*) FROM api_keys WHERE role = ? AND revoked IS NULL", (role,))
        return int(row[0]) if row is not None else 0

    async def revoke(self, key_id: str) -> bool:
        """False if there is no such key or it was already revoked."""
        changed = await self.db.execute("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                                        (self.clock(), key_id))
        self.cache.drop(key_id)
        return changed == 1

    async def check(self, text: str) -> KeyCheck:
        parsed = parse_key(text)
        if parsed is None:
            return KeyCheck(KeyStatus.MALFORMED)
        entry = await self._row(parsed.id)
        matches = secret_matches(entry[1] if entry is not None else _DUMMY_HASH, parsed.secret)
        if entry is None or not matches:
            return KeyCheck(KeyStatus.UNKNOWN)
        return self.status_of(entry[0])

    def status_of(self, key: APIKey) -> KeyCheck:
        if key.revoked is not None:
            return KeyCheck(KeyStatus.REVOKED, key)
        if key.expires is not None and key.expires <= self.clock():
            return KeyCheck(KeyStatus.EXPIRED, key)
        return KeyCheck(KeyStatus.VALID, key)

    async def touch(self, key: APIKey) -> None:
        """Note the key's use; written at most once a minute per key."""
        now = self.clock()
        if now - self._touched.get(key.id, 0.0) >= TOUCH_INTERVAL:
            self._touched[key.id] = now
            await self.db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (now, key.id))

    # --- sessions opened with a key ---

    async def bind_session(self, session_id: str, key_id: str) -> None:
        await self.db.execute("INSERT OR REPLACE INTO api_key_sessions (session_id, key_id) VALUES (?, ?)",
                              (session_id, key_id))
        self._sessions[session_id] = key_id

    def key_for_session(self, session_id: str) -> str | None:
        return self._sessions.get(session_id)

    async def unbind(self, key_id: str) -> list[str]:
        """Forget the sessions of a key; returns their ids (for the caller to end)."""
        ended = [sid for sid, kid in self._sessions.items() if kid == key_id]
        for sid in ended:
            del self._sessions[sid]
        await self.db.execute("DELETE FROM api_key_sessions WHERE key_id = ?", (key_id,))
        return ended
