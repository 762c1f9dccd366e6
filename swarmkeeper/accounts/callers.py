"""Who a request acts as, once accounts are on: a user by their role, or a user through an API key
(narrowed to the key's role)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from swarmkeeper.accounts.apikeys import APIKey
from swarmkeeper.accounts.store import Account
from swarmkeeper.api.permissions import role_permissions
from swarmkeeper.api.users import User


@dataclass(frozen=True)
class KeyUser(User):
    """A user acting through an API key; ``permissions`` are already narrowed to the key's role."""

    key_id: str = ""


def narrow(held: frozenset[str], limit: frozenset[str]) -> frozenset[str]:
    """The permissions of ``held`` that ``limit`` also grants (``*`` grants everything)."""
    if "*" in held:
        return limit
    if "*" in limit:
        return held
    return held & limit


#: The flags a role id grants (the accounts' RoleBook.permissions_of; the built-in defaults alone
#: where no role book is at hand).
Grants = Callable[[str], frozenset[str]]


def account_user(account: Account, grants: Grants = role_permissions) -> User:
    return User(account.name, (account.role,), grants(account.role))


def key_user(account: Account, key: APIKey, grants: Grants = role_permissions) -> KeyUser:
    held = grants(account.role)
    permissions = narrow(held, grants(key.role)) if key.role else held
    roles = (account.role, key.role) if key.role else (account.role,)
    return KeyUser(account.name, roles, permissions, key_id=key.id)


def within(user: User, role: str, grants: Grants = role_permissions) -> bool:
    """Whether a role grants nothing the user lacks (a key may not hold more than its user)."""
    wanted = grants(role)
    return narrow(user.permissions, wanted) == wanted
