"""Who is calling. The permission check needs only a :class:`UserSource`.

Without accounts (the default, as in SwarmUI) every caller is the local owner, named ``local``
unless the request carries an ``X-SWARM-USER_ID`` header. The accounts feature provides a
source of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.requests import HTTPConnection

from swarmkeeper.api.permissions import PermissionFlag, role_permissions
from swarmkeeper.api.sessions import Session


@dataclass(frozen=True)
class User:
    id: str
    roles: tuple[str, ...]
    permissions: frozenset[str]

    def may(self, flag: PermissionFlag) -> bool:
        return "*" in self.permissions or flag.id in self.permissions

    def permission_list(self) -> list[str]:
        return sorted(self.permissions)


#: The caller of a session-less route when no user could be resolved (accounts on, not logged in).
ANONYMOUS = User("", (), frozenset())


class UserSource(Protocol):
    async def user_for_request(self, connection: HTTPConnection) -> User | None:
        """The user a session-less request (GetNewSession) acts as, or None if it may not."""

    async def user_by_id(self, user_id: str) -> User | None:
        """The user a session belongs to, or None if that user no longer exists."""

    async def user_for_session(self, session: Session, connection: HTTPConnection) -> User | None:
        """The caller of a request that carries this session (None: the session is no longer valid).
        May raise a TransportError for a bad credential that comes with it (an API key)."""

    async def user_for_bearer(self, connection: HTTPConnection) -> User | None:
        """The caller of a request with no session id, from its credentials (an API key), or None.
        May raise a TransportError for a credential that is present but bad."""


def owner(user_id: str) -> User:
    return User(user_id, ("owner",), role_permissions("owner"))


class LocalOwner:
    """Account-less mode: everyone is an owner."""

    def __init__(self, default_user_id: str = "local") -> None:
        self.default_user_id = default_user_id

    async def user_for_request(self, connection: HTTPConnection) -> User | None:
        return owner(connection.headers.get("X-SWARM-USER_ID") or self.default_user_id)

    async def user_by_id(self, user_id: str) -> User | None:
        return owner(user_id)

    async def user_for_session(self, session: Session, connection: HTTPConnection) -> User | None:
        return owner(session.user_id)

    async def user_for_bearer(self, connection: HTTPConnection) -> User | None:
        return None
