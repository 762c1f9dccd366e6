"""User administration, with SwarmUI's AdminAPI route names and shapes (``manage_users``: owners
only by default), plus ``AdminSetUserRole``. Roles and permissions are in role_routes.py."""

from __future__ import annotations

from typing import Annotated

from swarmkeeper.accounts.passwords import new_password_digest
from swarmkeeper.accounts.service import Accounts
from swarmkeeper.api.permissions import MANAGE_USERS
from swarmkeeper.api.routes import APICall, RawInput, RouteTable
from swarmkeeper.exceptions import APIError
from swarmkeeper.types import JSONObject

routes = RouteTable()

SUCCESS: JSONObject = {"success": True}


@routes.route("AdminListUsers", flag=MANAGE_USERS, user_update=False, returns="""
    "users": ["user1", "user2"], "roles": {"user1": "admin", "user2": "user"}
""")
async def admin_list_users(call: APICall) -> JSONObject:
    """Admin route to get a list of all known users by ID (and, swarmkeeper, each one's role)."""
    accounts = await call.services.accounts.users.all()
    return {"users": [account.name for account in accounts],
            "roles": {account.name: account.role for account in accounts}}


@routes.route("AdminAddUser", flag=MANAGE_USERS, returns='"success": true')
async def admin_add_user(
    call: APICall,
    name: Annotated[str, "The name of the new user."],
    password: Annotated[str, "Initial password for the new user (as typed, or SwarmUI's client-side prehash)."],
    role: Annotated[str, "Initial role for the new user."],
) -> JSONObject:
    """Admin route to create a new user account."""
    accounts = call.services.accounts
    await accounts.add_user(name, new_password_digest(name, password), role)
    return SUCCESS


@routes.route("AdminDeleteUser", flag=MANAGE_USERS, returns='"success": true')
async def admin_delete_user(call: APICall, name: Annotated[str, "The name of the user to delete."]) -> JSONObject:
    """Admin route to delete an existing user account, with its logins, sessions and API keys."""
    await call.services.accounts.remove_user(name, actor=call.user.id)
    return SUCCESS


@routes.route("AdminSetUserPassword", flag=MANAGE_USERS, returns='"success": true')
async def admin_set_user_password(
    call: APICall,
    name: Annotated[str, "The name of the user."],
    password: Annotated[str, "The new password (as typed, or SwarmUI's client-side prehash)."],
) -> JSONObject:
    """Admin route to force-set a user's password; ends every login and session of that user."""
    accounts = call.services.accounts
    await accounts.account(name)
    await accounts.set_password(name, new_password_digest(name, password), by_admin=True)
    return SUCCESS


@routes.route("AdminSetUserRole", flag=MANAGE_USERS, returns='"success": true')
async def admin_set_user_role(
    call: APICall,
    name: Annotated[str, "The name of the user."],
    role: Annotated[str, "The new role: owner, admin, poweruser, user or guest."],
) -> JSONObject:
    """(swarmkeeper) Admin route to change a user's role; it applies to their next call."""
    await call.services.accounts.set_role(name, role, actor=call.user.id)
    return SUCCESS


async def existing(accounts: Accounts, name: str) -> None:
    if await accounts.users.get(name) is None:
        raise APIError("No user by that name exists.")


def max_t2i(call: APICall, role_limit: int) -> int:
    """SwarmUI's CalcMaxT2ISimultaneous: the role's limit, capped by what the real backends take at once."""
    capacity = sum(record.max_usages for record in call.services.registry.all() if record.real and record.enabled)
    return max(1, min(role_limit, capacity)) if capacity else role_limit


@routes.route("AdminGetUserInfo", flag=MANAGE_USERS, user_update=False, returns="""
    "user_id": "useridhere", "password_set_by_admin": true, "settings": {}, "oauth_email": "", "max_t2i": 32
""")
async def admin_get_user_info(call: APICall,
                              name: Annotated[str, "The name of the user to get info for."]) -> JSONObject:
    """Admin route to get info about a user. swarmkeeper keeps no per-user settings (`settings` is empty) and no
    OAuth; `max_t2i` is the role's limit capped by what the enabled backends take at once."""
    accounts = call.services.accounts
    account = await accounts.users.get(name)
    if account is None:
        raise APIError("No user by that name exists.")
    role = accounts.roles.get(account.role)
    return {"user_id": account.name, "password_set_by_admin": await accounts.users.password_set_by_admin(name),
            "settings": {}, "oauth_email": "", "max_t2i": max_t2i(call, role.max_t2i_simultaneous if role else 32)}


@routes.route("AdminChangeUserSettings", flag=MANAGE_USERS, returns='"success": true')
async def admin_change_user_settings(
    call: APICall,
    name: Annotated[str, "The name of the user."],
    rawData: Annotated[RawInput, "Simple object map of key as setting ID to new setting value to apply, under "
                                 "'settings'."],
) -> JSONObject:
    """Admin route to forcibly change user settings data for a user. swarmkeeper keeps no per-user settings, so
    only an empty `settings` succeeds; any setting is refused by name (nothing is changed)."""
    await existing(call.services.accounts, name)
    settings = rawData.get("settings", {})
    if not isinstance(settings, dict):
        raise APIError("'settings' must be an object of setting ID to value.")
    if settings:
        shown = ", ".join(repr(str(key)[:60]) for key in list(settings)[:5])
        raise APIError(f"Unknown user setting(s): {shown}. swarmkeeper keeps no per-user settings.")
    return SUCCESS
