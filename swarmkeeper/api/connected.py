"""Who is connected, as SwarmUI's ListConnectedUsers tells it: users with a session used in the
last 3 minutes, or with generations under way, each with the addresses of their recent sessions
and their generation counts."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from swarmkeeper.api.sessions import Session
from swarmkeeper.timefmt import time_since
from swarmkeeper.types import JSONObject

#: SwarmUI's window: a session (or user) used within this many seconds counts as present.
PRESENT_SECONDS = 180.0
COUNTS = ("waiting_gens", "loading_models", "waiting_backends", "live_gens")
SessionCounts = Callable[[Session], dict[str, int]]


def no_counts(session: Session) -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


@dataclass
class ConnectedUser:
    id: str
    sessions: list[Session]

    def last_used(self) -> float:
        return max(session.last_used for session in self.sessions)

    def describe(self, counts: SessionCounts, now: float) -> JSONObject | None:
        """The user's entry, or None when neither present nor busy (SwarmUI leaves them out)."""
        totals = dict.fromkeys(COUNTS, 0)
        for session in self.sessions:
            for name, value in counts(session).items():
                totals[name] += value
        idle = max(0.0, now - self.last_used())
        if idle > PRESENT_SECONDS and not any(totals.values()):
            return None
        recent = Counter(session.source or "unknown" for session in self.sessions
                         if now - session.last_used < PRESENT_SECONDS)
        return {"id": self.id, "last_active_seconds": idle,
                "active_sessions": [{"address": address, "count": count} for address, count in recent.items()],
                "last_active": time_since(idle), **totals}


def connected_users(sessions: Iterable[Session], counts: SessionCounts = no_counts,
                    now: float | None = None) -> list[JSONObject]:
    """ListConnectedUsers' ``users``, ordered by id; SwarmUI's internal ``__`` users left out."""
    now = time.time() if now is None else now
    by_user: dict[str, list[Session]] = {}
    for session in sessions:
        if not session.user_id.startswith("__"):
            by_user.setdefault(session.user_id, []).append(session)
    entries = (ConnectedUser(user_id, listed).describe(counts, now) for user_id, listed in sorted(by_user.items()))
    return [entry for entry in entries if entry is not None]
