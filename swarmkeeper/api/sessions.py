"""API sessions, kept in SQLite so they survive a restart (SwarmUI keeps them in its database).

Lookups are served from memory (every API call makes one); the database is written when a
session is made or ended, and its last-used time at most once a minute.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from swarmkeeper.api.access import AccessChanges
from swarmkeeper.db import Database

TOUCH_INTERVAL = 60.0


@dataclass
class Session:
    id: str
    user_id: str
    source: str
    created: float
    last_used: float
    _written: float = 0.0


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
        session = Session(secrets.token_hex(24), user_id, source[:100], now, now, now)
        await self.db.execute(
            "INSERT INTO sessions (id, user_id, source, created, last_used) VALUES (?, ?, ?, ?, ?)",
            (session.id, session.user_id, session.source, now, now))
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

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
        ended = [sid for sid, session in self._sessions.items() if session.user_id == user_id]
        for sid in ended:
            del self._sessions[sid]
        await self.db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        self.access.notify()
        return len(ended)

    async def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        await self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        self.access.notify()
