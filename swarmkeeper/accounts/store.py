"""The users table. Every change is one SQL statement, so it happens whole or not at all (a user's
login tokens and API keys go with it by ``ON DELETE CASCADE``). Nothing is cached: the CLI may
change the table while a server runs, and the server sees it on the next call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from swarmkeeper.db import Database


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    created: float
    password_hash: str = field(repr=False)


class UserStore:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def add(self, name: str, role: str, password_hash: str) -> bool:
        """False if the name is taken."""
        changed = await self.db.execute(
            "INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, role, password_hash, self.clock()))
        return changed == 1

    async def get(self, name: str) -> Account | None:
        row = await self.db.fetch_one("SELECT name, role, created, password_hash FROM users WHERE name = ?", (name,))
        return Account(*row) if row is not None else None

    async def all(self) -> list[Account]:
        rows = await self.db.fetch_all("SELECT name, role, created, password_hash FROM users ORDER BY name")
        return [Account(*row) for row in rows]

    async def set_role(self, name: str, role: str) -> bool:
        return await self.db.execute("UPDATE users SET role = ? WHERE name = ?", (role, name)) == 1

    async def set_password(self, name: str, password_hash: str) -> bool:
        return await self.db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)) == 1

    async def remove(self, name: str) -> bool:
        return await self.db.execute("DELETE FROM users WHERE name = ?", (name,)) == 1

    async def count_role(self, role: str) -> int:
        row = await self.db.fetch_one("SELECT COUNT(*) FROM users WHERE role = ?", (role,))
        return int(row[0]) if row is not None else 0
