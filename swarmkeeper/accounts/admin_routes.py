"""User administration, with SwarmUI's AdminAPI route names and shapes (``manage_users``: owners
only by default), plus ``AdminSetUserRole``; and the role and permission lists (``configure_roles``)."""

from __future__ import annotations

from typing import Annotated

from swarmkeeper.accounts.passwords import new_password_digest
from swarmkeeper.accounts.service import accounts_of
from swarmkeeper.api.permissions import (
    ALL_FLAGS,
    CONFIGURE_ROLES,
    MANAGE_USERS,
    ROLES,
    Level,
    PermissionFlag,
    PermissionGroup,
    Safety,
    role_permissions,
)
from swarmkeeper.api.routes import APICall, RouteTable
from swarmkeeper.types import JSONObject

routes = RouteTable()

SPECIAL = PermissionGroup("Special", "Special permissions that don't make sense to give out.")
#: SwarmUI lists the ``*`` wildcard as a permission of its own.
FULL_CONTROL = PermissionFlag(
    "*", "Full Control", "Allows full control over everything.\nA magic wildcard to allow all permissions.\nOnly the "
    "owner should have this.", Level.NOBODY, SPECIAL, Safety.POWERFUL)
SUCCESS: JSONObject = {"success": True}


@routes.route("AdminListUsers", flag=MANAGE_USERS, user_update=False, returns="""
    "users": ["user1", "user2"], "roles": {"user1": "admin", "user2": "user"}
""")
async def admin_list_users(call: APICall) -> JSONObject:
    """Admin route to get a list of all known users by ID (and, swarmkeeper, each one's role)."""
    accounts = await accounts_of(call.services).users.all()
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
    accounts = accounts_of(call.services)
    await accounts.add_user(name, new_password_digest(name, password), role)
    return SUCCESS


@routes.route("AdminDeleteUser", flag=MANAGE_USERS, returns='"success": true')
async def admin_delete_user(call: APICall, name: Annotated[str, "The name of the user to delete."]) -> JSONObject:
    """Admin route to delete an existing user account, with its logins, sessions and API keys."""
    await accounts_of(call.services).remove_user(name, actor=call.user.id)
    return SUCCESS


@routes.route("AdminSetUserPassword", flag=MANAGE_USERS, returns='"success": true')
async def admin_set_user_password(
    call: APICall,
    name: Annotated[str, "The name of the user."],
    password: Annotated[str, "The new password (as typed, or SwarmUI's client-side prehash)."],
) -> JSONObject:
    """Admin route to force-set a user's password; ends every login and session of that user."""
    accounts = accounts_of(call.services)
    await accounts.account(name)
    await accounts.set_password(name, new_password_digest(name, password))
    return SUCCESS


@routes.route("AdminSetUserRole", flag=MANAGE_USERS, returns='"success": true')
async def admin_set_user_role(
    call: APICall,
    name: Annotated[str, "The name of the user."],
    role: Annotated[str, "The new role: owner, admin, poweruser, user or guest."],
) -> JSONObject:
    """(swarmkeeper) Admin route to change a user's role; it applies to their next call."""
    await accounts_of(call.services).set_role(name, role, actor=call.user.id)
    return SUCCESS


@routes.route("AdminListRoles", flag=CONFIGURE_ROLES, user_update=False, returns="""
    "roles": {"user": {"name": "User", "description": "...", "is_auto_generated": true,
                       "permissions": ["first", "second"]}}
""")
async def admin_list_roles(call: APICall) -> JSONObject:
    """Admin route to get a list of all available roles, with the permissions each one holds."""
    return {"roles": {role.id: {"name": role.display_name, "description": role.description,
                                "is_auto_generated": True, "permissions": sorted(role_permissions(role.id))}
                      for role in ROLES}}


@routes.route("AdminListPermissions", flag=CONFIGURE_ROLES, user_update=False, returns="""
    "permissions": {"perm_name": {"name": "Perm Name", "description": "...", "default": "USER",
                                  "group": {"name": "My Group", "description": "..."},
                                  "safety_level": "UNTESTED", "alt_safety_text": null}}
""")
async def admin_list_permissions(call: APICall) -> JSONObject:
    """Admin route to get a list of all available permissions."""
    return {"permissions": {flag.id: flag.describe() for flag in (FULL_CONTROL, *ALL_FLAGS)}}
