"""AccountUsers: who is calling, once accounts are on (the transport's UserSource).

For a request without a session (GetNewSession, Login), in this order: an API key
(``Authorization: Bearer swk_...``), the ``swarm_token`` login cookie, then the localhost bypass
(a direct loopback connection with no ``X-Forwarded-For`` acts as the local owner, as in SwarmUI,
unless ``AllowLocalhostBypass`` is off). Explicit credentials come first, so a key narrows even a
local script.

A request with a session acts as the session's user, re-read from the database on every call
(a role change or removal takes effect at once). A key may stand in for a session on any route;
if a request brings both, the key decides and must belong to the session's user. A session opened
with a key keeps the key's narrower role, and dies with the key.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from swarmkeeper.accounts.apikeys import KeyStatus, looks_like_key
from swarmkeeper.accounts.callers import KeyUser, key_user
from swarmkeeper.accounts.service import Accounts
from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.api.sessions import Session
from swarmkeeper.api.users import User, owner
from swarmkeeper.exceptions import InvalidAPIKey

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
KEY_REFUSALS: dict[KeyStatus, str] = {
    KeyStatus.MALFORMED: "Malformed API key: keys look like swk_<12 hex digits>_<secret>, sent as "
                         "'Authorization: Bearer <key>'.",
    KeyStatus.UNKNOWN: "Invalid API key.",
    KeyStatus.REVOKED: "This API key has been revoked.",
    KeyStatus.EXPIRED: "This API key has expired.",
}


def bearer_key(connection: HTTPConnection) -> str | None:
    """The API key a request carries, if any. Bearer values without the ``swk_`` prefix are not
    ours (they may be the RequiredAuthorization pass phrase) and are left alone."""
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and looks_like_key(value) else None


class AccountUsers:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def is_local_bypass(self, connection: HTTPConnection) -> bool:
        client = connection.client.host if connection.client else ""
        return (self.accounts.policy.localhost_bypass and client in LOOPBACK
                and "x-forwarded-for" not in connection.headers)

    def local_owner(self) -> User:
        return owner(self.accounts.policy.local_user)

    async def key_caller(self, text: str) -> KeyUser:
        """The user behind a key; InvalidAPIKey (HTTP 401) if it cannot be used."""
        check = await self.accounts.keys.check(text)
        if check.status is not KeyStatus.VALID or check.key is None:
            raise InvalidAPIKey(KEY_REFUSALS[check.status])
        account = await self.accounts.users.get(check.key.user)
        if account is None:
            raise InvalidAPIKey(KEY_REFUSALS[KeyStatus.UNKNOWN])
        await self.accounts.keys.touch(check.key)
        return key_user(account, check.key, self.accounts.roles.permissions_of)

    async def user_for_bearer(self, connection: HTTPConnection) -> User | None:
        text = bearer_key(connection)
        return await self.key_caller(text) if text is not None else None

    async def user_for_request(self, connection: HTTPConnection) -> User | None:
        by_key = await self.user_for_bearer(connection)
        if by_key is not None:
            return by_key
        token = connection.cookies.get(COOKIE)
        name = await self.accounts.tokens.verify(token) if token else None
        if name is not None:
            return await self.accounts.user_named(name)
        return self.local_owner() if self.is_local_bypass(connection) else None

    async def user_by_id(self, user_id: str) -> User | None:
        user = await self.accounts.user_named(user_id)
        if user is None and user_id == self.accounts.policy.local_user and self.accounts.policy.localhost_bypass:
            return self.local_owner()
        return user

    async def user_for_session(self, session: Session, connection: HTTPConnection) -> User | None:
        by_key = await self.user_for_bearer(connection)
        if by_key is not None:
            return by_key if by_key.id == session.user_id else None
        key_id = self.accounts.keys.key_for_session(session.id)
        if key_id is not None:
            return await self._bound_key_user(key_id)
        user = await self.accounts.user_named(session.user_id)
        if user is None and session.user_id == self.accounts.policy.local_user and self.is_local_bypass(connection):
            return self.local_owner()
        return user

    async def _bound_key_user(self, key_id: str) -> User | None:
        key = await self.accounts.keys.get(key_id)
        if key is None or self.accounts.keys.status_of(key).status is not KeyStatus.VALID:
            return None
        account = await self.accounts.users.get(key.user)
        return key_user(account, key, self.accounts.roles.permissions_of) if account is not None else None
