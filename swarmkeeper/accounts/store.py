"""The users table. Every change is one SQL statement, so it happens whole or not at all (a user's
login tokens and API keys go with it by ``ON DELETE CASCADE``). Lookups are cached for a second
(cache.py): a change made here applies at once, one made by the CLI while a server runs within
that second."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from swarmkeeper.accounts.cache import RowCache
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
        self.cache: RowCache[str, Account] = RowCache()

    async def add(self, name: str, role: str, password_hash: str) -> bool:
        """False if the name is taken."""
        changed = await self.db.execute(
            "INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, role, password_hash, self.clock()))
        self.cache.drop(name)
        return changed == 1

    async def get(self, name: str) -> Account | None:
        hit, account = self.cache.get(name)
        if hit:
            return account
        generation = self.cache.generation
        row = await self.db.fetch_one("SELECT name, role, created, password_hash FROM users WHERE name = ?", (name,))
        account = Account(*row) if row is not None else None
        self.cache.put(name, account, generation)  # type: ignore[arg-type]  # None caches "no such user"
        return account

    async def all(self) -> list[Account]:
        rows = await self.db.fetch_all("SELECT name, role, created, password_hash FROM users ORDER BY name")
        return [Account(*row) for row in rows]

    async def set_role(self, name: str, role: str) -> bool:
        changed = await self.db.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))
        self.cache.drop(name)
        return changed == 1

    async def set_password(self, name: str, password_hash: str, *, by_admin: bool = False) -> bool:
        changed = await self.db.execute("UPDATE users SET password_hash = ?, password_set_by_admin = ? WHERE name = ?",
                                        (password_hash, int(by_admin), name))
        self.cache.drop(name)
        return changed == 1

    async def password_set_by_admin(self, name: str) -> bool:
        row = await self.db.fetch_one("SELECT password_set_by_admin FROM users WHERE name = ?", (name,))
        return bool(row[0]) if row is not None else False

    async def names_with_role(self, role: str) -> list[str]:
        rows = await self.db.fetch_all("SELECT name FROM users WHERE role = ? ORDER BY name", (role,))
        return [row[0] for row in rows]

    async def remove(self, name: str) -> bool:
        changed = await self.db.execute("DELETE FROM users WHERE name = ?", (name,))
        self.cache.drop(name)
        return changed == 1

    async def count_role(self, role: str) -> int:
        row = await self.db.fetch_one("SELECT COUNT(*) FROM users WHERE role = ?", (role,))
        return int(row[0]) if row is not None else 0
