"""SwarmUI's account routes for one's own login: ``Login``, ``Logout``, ``ChangePassword``."""

from __future__ import annotations

from typing import Annotated

from swarmkeeper.accounts.callers import KeyUser
from swarmkeeper.accounts.cookies import cleared_cookie, queue_cookie, token_cookie
from swarmkeeper.accounts.errors import AccountError
from swarmkeeper.accounts.login import begin_attempt, log_in, throttle_keys
from swarmkeeper.accounts.passwords import login_digest, new_password_digest
from swarmkeeper.accounts.service import DAY, Accounts
from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.api.permissions import EDIT_USER_SETTINGS, FUNDAMENTAL_FLAG, PUBLIC
from swarmkeeper.api.routes import APICall, RouteTable
from swarmkeeper.types import JSONObject

routes = RouteTable()

ACCOUNTS_OFF = ("Accounts are off on this server: everyone is the local owner, so there is no login "
                "(start it with --require_accounts, or set UserAuthorization.AuthorizationRequired).")
NEEDS_LOGIN = "This needs a login, not an API key."


def accounts_on(call: APICall) -> Accounts:
    accounts = call.services.accounts
    if not accounts.policy.required:
        raise AccountError(ACCOUNTS_OFF)
    return accounts


def own_account(call: APICall) -> None:
    if isinstance(call.user, KeyUser):
        raise AccountError(NEEDS_LOGIN)


def client_host(call: APICall) -> str:
    """The address throttling counts against: the connection's own (a forwarded-for header can
    be forged by anyone)."""
    return call.connection.client.host if call.connection.client else "unknown"


@routes.route("Login", flag=PUBLIC, needs_session=False, returns="""
    "success": "true" // and sets the swarm_token cookie
    // or
    "error_id": "invalid_login", "error": "Invalid username or password." // or "ratelimit"
""")
async def login(
    call: APICall,
    username: Annotated[str, "Login username."],
    password: Annotated[str, "Login password: as typed, or SwarmUI's client-side prehash of it."],
) -> JSONObject:
    """Special route to log in as a user account: sets the swarm_token cookie that GetNewSession reads.
    Bots and scripts should use an API key (Authorization: Bearer) instead."""
    accounts = accounts_on(call)
    outcome = await log_in(accounts, username, password, client_host(call))
    if outcome.token:
        lifetime = int(accounts.policy.token_days * DAY)
        queue_cookie(call.connection, token_cookie(call.connection, outcome.token, lifetime))
    return outcome.answer()


@routes.route("Logout", flag=FUNDAMENTAL_FLAG, returns='"success": "true"')
async def logout(call: APICall) -> JSONObject:
    """Causes a user to log out, closing all associated sessions in the process (and ending the
    login the request's swarm_token cookie holds)."""
    accounts = accounts_on(call)
    own_account(call)
    token = call.connection.cookies.get(COOKIE)
    if token:
        await accounts.tokens.revoke(token)
    await accounts.sessions.end_for_user(call.user.id)
    queue_cookie(call.connection, cleared_cookie(call.connection))
    return {"success": "true"}


@routes.route("ChangePassword", flag=EDIT_USER_SETTINGS, returns='"success": true')
async def change_password(
    call: APICall,
    oldPassword: Annotated[str, "Your current password (as typed, or SwarmUI's client-side prehash)."],
    newPassword: Annotated[str, "Your new password. Must be at least 8 characters."],
) -> JSONObject:
    """User route to change their own password. Throttled like Login; ends every login and session of
    the user (log in again after)."""
    accounts = accounts_on(call)
    own_account(call)
    name = call.user.id
    if await accounts.users.get(name) is None:
        raise AccountError("The local owner has no password; passwords belong to user accounts.")
    address = client_host(call)
    refusal = await begin_attempt(accounts, name, address)
    if refusal is not None:
        raise AccountError(refusal.message())
    if not await accounts.check_password(name, login_digest(name, oldPassword)):
        raise AccountError("The current password is not right.")
    accounts.throttle.succeeded(*throttle_keys(name, address))
    await accounts.set_password(name, new_password_digest(name, newPassword))
    queue_cookie(call.connection, cleared_cookie(call.connection))
    return {"success": True}

