"""API sessions, kept in SQLite so they survive a restart (SwarmUI keeps them in its database).

A session id is a bearer credential, so it is never stored: the database (and this store's
memory) keep its SHA-256, ``Session.id``, and a lookup hashes the id it is given. The id itself is
``Session.token``, known only to the call that made the session (GetNewSession answers it).

Lookups are served from memory (every API call makes one); the database is written when a
session is made or ended, and its last-used time at most once a minute.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from swarmkeeper.api.access import AccessChanges
from swarmkeeper.db import Database, sha256_hex

TOUCH_INTERVAL = 60.0


def session_key(token: str) -> str:
    """What a session id is stored and known by inside the server (``Session.id``)."""
    return sha256_hex(token)


@dataclass
class Session:
    #: The SHA-256 of the session id: how the server refers to the session, never a credential.
    id: str
    user_id: str
    source: str
    created: float
    last_used: float
    _written: float = 0.0
    #: The session id the client holds; only set on the session GetNewSession just made.
    token: str = ""


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._sessions: dict[str, Session] = {}
        #: Notified when a session ends (and by the accounts when rights shrink otherwise).
        self.access = AccessChanges()

    async def load(self) -> None:
        rows = await self.db.fetch_all("SELECT id, user_id, source, created, last_used FROM sessions")
        self._sessions = {row["id"]: Session(row["id"], row["user_id"], row["source"], row["created"], row["last_used"],
                                              _written=row["last_used"]) for row in rows}

    async def create(self, user_id: str, source: str = "") -> Session:
        now = time.time()
        token = secrets.token_hex(24)
        session = Session(session_key(token), user_id, source[:100], now, now, now, token=token)
        await self.db.execute(
            "INSERT INTO sessions (id, user_id, source, created, last_used) VALUES (?, ?, ?, ?, ?)",
            (session.id, session.user_id, session.source, now, now))
        self._sessions[session.id] = session
        return session

    def get(self, token: str) -> Session | None:
        """The session whose id (as the client holds it) is ``token``."""
        return self._sessions.get(session_key(token))

    def by_key(self, key: str) -> Session | None:
        """The session whose ``Session.id`` is ``key`` (for parts that kept it, e.g. a job's owner)."""
        return self._sessions.get(key)

    def all(self) -> list[Session]:
        return list(self._sessions.values())

    def of_user(self, user_id: str) -> list[Session]:
        return [session for session in self._sessions.values() if session.user_id == user_id]

    async def touch(self, session: Session) -> None:
        """Note that the session was used (user-update routes); written at most once a minute."""
        session.last_used = time.time()
        if session.last_used - session._written >= TOUCH_INTERVAL:
            session._written = session.last_used
            await self.db.execute("UPDATE sessions SET last_used = ? WHERE id = ?", (session.last_used, session.id))

    async def end_for_user(self, user_id: str) -> int:
        """End every session of a user (logout, token revocation, user removed)."""
        ended = [key for key, session in self._sessions.items() if session.user_id == user_id]
        for key in ended:
            del self._sessions[key]
        await self.db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        self.access.notify()
        return len(ended)

    async def end(self, token: str) -> None:
        """End the session whose id (as the client holds it) is ``token``."""
        await self.end_key(session_key(token))

    async def end_key(self, key: str) -> None:
        """End the session whose ``Session.id`` is ``key``."""
        self._sessions.pop(key, None)
        await self.db.execute("DELETE FROM sessions WHERE id = ?", (key,))
        self.access.notify()
