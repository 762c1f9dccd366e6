"""Passwords: SwarmUI's client-side prehash, then argon2.

SwarmUI's web page never sends a password as typed: it sends the SHA-256 (lower-case hex) of
``swarmclientpw:<user>:<password>`` (or, in a browser without WebCrypto, that text behind the
marker ``__swarmdoprehash:`` for the server to hash). swarmkeeper stores argon2 of that digest, so
its own page, SwarmUI-style pages and scripts sending the plain password all log in alike: a plain
password is prehashed here. A password of exactly 64 hex digits is therefore read as a digest.

argon2 is slow on purpose (tens of milliseconds); it runs in the event loop's default executor so
the loop keeps answering other calls meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from swarmkeeper.accounts.errors import AccountError

MIN_LENGTH = 8
MAX_LENGTH = 1024
FALLBACK_MARKER = "__swarmdoprehash:"
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def client_prehash(name: str, password: str) -> str:
    """What SwarmUI's page sends in place of the password."""
    return hashlib.sha256(f"swarmclientpw:{name}:{password}".encode()).hexdigest()


def is_digest(given: str) -> bool:
    return _DIGEST.fullmatch(given) is not None


def login_digest(name: str, given: str) -> str:
    """The prehash of a password as a login sends it: a digest, the fallback form, or plain."""
    if is_digest(given):
        return given.lower()
    if given.startswith(FALLBACK_MARKER):
        return hashlib.sha256(given[len(FALLBACK_MARKER):].encode()).hexdigest()
    return client_prehash(name, given)


def check_plain_password(password: str) -> str:
    """A new password as a person typed it: long enough, not absurdly long."""
    if len(password) < MIN_LENGTH:
        raise AccountError(f"Passwords are at least {MIN_LENGTH} characters long.")
    if len(password) > MAX_LENGTH:
        raise AccountError(f"Passwords are at most {MAX_LENGTH} characters long.")
    return password


def new_password_digest(name: str, given: str) -> str:
    """The digest to store for a new password sent to the API: a page's prehash is taken as it
    is (the page checked the length); a plain password is checked, then prehashed."""
    if is_digest(given) or given.startswith(FALLBACK_MARKER):
        return login_digest(name, given)
    return client_prehash(name, check_plain_password(given))


class Passwords:
    """argon2 over prehash digests. A check for a user that does not exist still runs a full
    verification (against a throw-away hash), so timing does not tell which names exist."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    async def hash(self, digest: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, digest)

    async def warm_up(self) -> str:
        """The stand-in hash, made now if need be (at start, so even the first check of an unknown
        name costs what any other does)."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_hex(32))
        return self._dummy

    async def verify(self, stored: str | None, digest: str) -> bool:
        if stored is None:
            stored = await self.warm_up()
            digest = "x" + digest  # never matches, costs the same
        try:
            return await asyncio.to_thread(self.hasher.verify, stored, digest)
        except (VerificationError, InvalidHashError):
            return False
