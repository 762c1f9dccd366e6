"""Login tokens, in SwarmUI's ``swarm_token`` cookie form: ``<hex of the user name>.<token id>.<validation>``.

The database keeps the token id and a SHA-256 of the validation part, never the token itself;
the validation part is 32 random bytes, so a fast hash is enough, and it is compared in constant
time. A token lasts ``UserAuthorization.LoginTokenDays``; logout, a password change and removing
the user revoke tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from swarmkeeper.db import Database

COOKIE = "swarm_token"
MIN_LENGTH = 10
MAX_LENGTH = 1000
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True)
class TokenParts:
    user: str
    token_id: str
    validation: str = ""

    def __repr__(self) -> str:  # the validation part is a secret
        return f"TokenParts(user={self.user!r}, token_id={self.token_id!r})"


def parse_token(text: str) -> TokenParts | None:
    """The parts of a well-formed token, or None (as SwarmUI: 10 to 1000 characters, three parts)."""
    if not MIN_LENGTH <= len(text) <= MAX_LENGTH:
        return None
    parts = text.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        user = bytes.fromhex(parts[0]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return TokenParts(user, parts[1], parts[2])


def _hash(validation: str) -> str:
    return hashlib.sha256(validation.encode()).hexdigest()


class LoginTokens:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def issue(self, user: str, lifetime_seconds: float, address: str = "") -> str:
        token_id, validation = secrets.token_hex(16), secrets.token_hex(32)
        now = self.clock()
        await self.db.execute(
            "INSERT INTO login_tokens (id, user_name, validation_hash, created, expires, address) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, user, _hash(validation), now, now + lifetime_seconds, address[:200]))
        return f"{user.encode().hex()}.{token_id}.{validation}"

    async def verify(self, text: str) -> str | None:
        """The user a token logs in, or None if it is malformed, unknown, revoked or expired."""
        parts = parse_token(text)
        if parts is None:
            return None
        row = await self.db.fetch_one(
            "SELECT user_name, validation_hash, expires FROM login_tokens WHERE id = ?", (parts.token_id,))
        stored = row["validation_hash"] if row is not None else _DUMMY_HASH
        matches = hmac.compare_digest(stored.encode(), _hash(parts.validation).encode())
        if row is None or not matches or row["user_name"] != parts.user:
            return None
        if row["expires"] <= self.clock():
            await self.db.execute("DELETE FROM login_tokens WHERE id = ?", (parts.token_id,))
            return None
        return str(row["user_name"])

    async def revoke(self, text: str) -> bool:
        """End one login (logout); only a token that verifies can be revoked by its text."""
        user = await self.verify(text)
        parts = parse_token(text)
        if user is None or parts is None:
            return False
        return await self.db.execute("DELETE FROM login_tokens WHERE id = ?", (parts.token_id,)) == 1

    async def revoke_all(self, user: str) -> int:
        return await self.db.execute("DELETE FROM login_tokens WHERE user_name = ?", (user,))
