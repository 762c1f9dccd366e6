"""Accounts: users, logins, keys, throttling and the audit log together, as the routes and the CLI
use them. Rules that protect the server live here (names checked, a key never holds more than its
user, the last owner stays), so the API and the command line enforce the same ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from swarmkeeper.accounts.apikeys import APIKey, KeyStore
from swarmkeeper.accounts.audit import AuditLog
from swarmkeeper.accounts.callers import account_user, within
from swarmkeeper.accounts.errors import AccountError
from swarmkeeper.accounts.names import check_key_name, check_user_name
from swarmkeeper.accounts.passwords import Passwords
from swarmkeeper.accounts.roles import RoleBook
from swarmkeeper.accounts.store import Account, UserStore
from swarmkeeper.accounts.throttle import LoginThrottle
from swarmkeeper.accounts.tokens import LoginTokens
from swarmkeeper.api.sessions import SessionStore
from swarmkeeper.api.users import User
from swarmkeeper.config import ServerConfig, ServerSettings
from swarmkeeper.db import Database

DAY = 86400.0
MAX_KEY_DAYS = 3650


@dataclass(frozen=True)
class AccountsPolicy:
    #: Users must log in (--require_accounts, or UserAuthorization.AuthorizationRequired).
    required: bool = False
    #: A direct connection from loopback (no X-Forwarded-For) acts as the local owner.
    localhost_bypass: bool = True
    #: The local owner's name (--user_id); no account may take it.
    local_user: str = "local"
    token_days: float = 30.0

    @classmethod
    def of(cls, config: ServerConfig, settings: ServerSettings) -> AccountsPolicy:
        section = settings.userauthorization
        return cls(required=config.require_accounts or section.AuthorizationRequired,
                   localhost_bypass=section.AllowLocalhostBypass, local_user=config.user_id,
                   token_days=max(section.LoginTokenDays, 0.0))


class Accounts:
    def __init__(self, db: Database, sessions: SessionStore, policy: AccountsPolicy, *,
                 passwords: Passwords | None = None, throttle: LoginThrottle | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.sessions = sessions
        self.clock = clock
        self.users = UserStore(db, clock)
        self.tokens = LoginTokens(db, clock)
        self.keys = KeyStore(db, clock)
        self.audit = AuditLog(db, clock)
        self.roles = RoleBook(db)
        self.passwords = passwords or Passwords()
        self.throttle = throttle or LoginThrottle()

    async def start(self) -> None:
        await self.keys.load()
        await self.roles.load()

    # --- users ---

    async def user_named(self, name: str) -> User | None:
        account = await self.users.get(name)
        return account_user(account, self.roles.permissions_of) if account is not None else None

    async def account(self, name: str) -> Account:
        account = await self.users.get(name)
        if account is None:
            raise AccountError("No such user.")
        return account

    async def add_user(self, name: str, digest: str, role: str) -> None:
        """Add a user whose password prehash is ``digest`` (see passwords.py)."""
        check_user_name(name)
        self.roles.check(role)
        if name == self.policy.local_user:
            raise AccountError(f"The name '{name}' is the local owner's (--user_id); choose another.")
        if not await self.users.add(name, role, await self.passwords.hash(digest)):
            raise AccountError(f"A user named '{name}' already exists.")

    async def remove_user(self, name: str, *, actor: str | None = None) -> None:
        account = await self.account(name)
        if actor == name:
            raise AccountError("You cannot remove your own account.")
        await self._keep_an_owner(account, actor)
        for key in await self.keys.listing(name):
            await self._end_key_sessions(key.id)
        await self.users.remove(name)
        await self.sessions.end_for_user(name)

    async def set_role(self, name: str, role: str, *, actor: str | None = None) -> None:
        account = await self.account(name)
        self.roles.check(role)
        if role != "owner":
            await self._keep_an_owner(account, actor)
        await self.users.set_role(name, role)
        self.sessions.access.notify()  # open push streams check their caller's rights again now

    async def set_password(self, name: str, digest: str, *, by_admin: bool = False) -> None:
        """A new password ends every login and session of the user (API keys stay)."""
        await self.account(name)
        await self.users.set_password(name, await self.passwords.hash(digest), by_admin=by_admin)
        await self.end_logins(name)

    async def check_password(self, name: str, digest: str) -> bool:
        account = await self.users.get(name)
        return await self.passwords.verify(account.password_hash if account else None, digest)

    async def end_logins(self, name: str) -> None:
        await self.tokens.revoke_all(name)
        await self.sessions.end_for_user(name)

    async def delete_role(self, role_id: str) -> None:
        """A custom role goes only when no user and no live API key holds it (they would be left
        with a role that grants nothing)."""
        self.roles.deletable(role_id)
        holders = await self.users.names_with_role(role_id)
        if holders:
            shown = ", ".join(holders[:5]) + (", ..." if len(holders) > 5 else "")
            raise AccountError(f"That role is held by {len(holders)} user(s) ({shown}); give them another role "
                               "first.")
        keys = await self.keys.count_with_role(role_id)
        if keys:
            raise AccountError(f"{keys} API key(s) are narrowed to that role; revoke them first.")
        await self.roles.delete(role_id)

    async def _keep_an_owner(self, account: Account, actor: str | None) -> None:
        """Through the API (an actor), the last owner can be neither removed nor demoted."""
        if actor is not None and account.role == "owner" and await self.users.count_role("owner") <= 1:
            raise AccountError("That is the last owner; make another owner first.")

    # --- API keys ---

    async def create_key(self, creator: User, name: str, role: str = "",
                         expires_days: float = 0) -> tuple[APIKey, str]:
        """A key for ``creator`` (narrowed to ``role`` if given); returns it and its text, shown once."""
        check_key_name(name)
        if role:
            self.roles.check(role)
            if not within(creator, role, self.roles.permissions_of):
                raise AccountError(f"A key cannot hold more than its user: role '{role}' has permissions "
                                   f"'{creator.id}' lacks.")
        if not 0 <= expires_days <= MAX_KEY_DAYS:
            raise AccountError(f"expires_days is 0 (never) to {MAX_KEY_DAYS}.")
        expires = self.clock() + expires_days * DAY if expires_days else None
        return await self.keys.create(creator.id, name.strip(), role, expires)

    async def revoke_key(self, key_id: str) -> bool:
        revoked = await self.keys.revoke(key_id)
        await self._end_key_sessions(key_id)
        self.sessions.access.notify()  # also a stream that shows the key itself (Authorization: Bearer)
        return revoked

    async def _end_key_sessions(self, key_id: str) -> None:
        for session_id in await self.keys.unbind(key_id):
            await self.sessions.end_key(session_id)

