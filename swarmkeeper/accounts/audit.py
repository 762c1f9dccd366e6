"""The audit log: who called which changing route, when, from where, on which backend, with what
(secrets redacted, see redact.py) and how it ended. Newest first when read."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swarmkeeper.accounts.redact import to_json
from swarmkeeper.db import Database
from swarmkeeper.types import JSONObject

MAX_LIMIT = 1000
OK = "ok"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: float
    user: str
    route: str
    backend_id: str | None
    new_backend_id: str | None
    address: str
    changes: JSONObject
    outcome: str

    def describe(self) -> JSONObject:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return {"id": self.id, "time": self.time, "time_text": stamp, "user": self.user, "route": self.route,
                "backend_id": self.backend_id, "new_backend_id": self.new_backend_id, "address": self.address,
                "changes": self.changes, "outcome": self.outcome}


def _entry(row: Any) -> AuditEntry:
    try:
        changes = json.loads(row["changes"])
    except ValueError:
        changes = {}
    return AuditEntry(row["id"], row["time"], row["user_id"], row["route"], row["backend_id"], row["new_backend_id"],
                      row["address"], changes, row["outcome"])


class AuditLog:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def record(self, *, user: str, route: str, address: str = "", changes: JSONObject | None = None,
                     outcome: str = OK, backend_id: str | None = None, new_backend_id: str | None = None) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (time, user_id, route, backend_id, new_backend_id, address, changes, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.clock(), user, route, backend_id, new_backend_id, address[:200], to_json(changes or {}),
             outcome[:1000]))

    async def query(self, *, backend: str | None = None, user: str | None = None, limit: int = 100,
                    before: int | None = None) -> list[AuditEntry]:
        """Newest first. ``backend`` matches the backend a call named, the id it moved a backend to,
        and calls on ``all`` backends; ``before`` pages back from an entry id."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if backend is not None:
            where.append("(backend_id = ? OR new_backend_id = ? OR backend_id = 'all')")
            params += [backend, backend]
        if user is not None:
            where.append("user_id = ?")
            params.append(user)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        params.append(max(1, min(limit, MAX_LIMIT)))
        rows = await self.db.fetch_all(
            f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", params)
        return [_entry(row) for row in rows]
