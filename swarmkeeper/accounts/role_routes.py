"""Roles and permissions, with SwarmUI's AdminAPI route names and shapes (``configure_roles``: owners
only by default): the lists SwarmUI's Users tab reads, and custom roles (add, edit, delete)."""

from __future__ import annotations

from typing import Annotated

from swarmkeeper.accounts.roles import RoleEdit
from swarmkeeper.api.permissions import (
    ALL_FLAGS,
    CONFIGURE_ROLES,
    Level,
    PermissionFlag,
    PermissionGroup,
    Safety,
    ordered,
)
from swarmkeeper.api.routes import APICall, RouteTable
from swarmkeeper.types import JSONObject

routes = RouteTable()

SPECIAL = PermissionGroup("Special", "Special permissions that don't make sense to give out.")
#: SwarmUI lists the ``*`` wildcard as a permission of its own.
FULL_CONTROL = PermissionFlag(
    "*", "Full Control", "Allows full control over everything.\nA magic wildcard to allow all permissions.\nOnly the "
    "owner should have this.", Level.NOBODY, SPECIAL, Safety.POWERFUL)
LISTED = (FULL_CONTROL, *ALL_FLAGS)
SUCCESS: JSONObject = {"success": True}


@routes.route("AdminListRoles", flag=CONFIGURE_ROLES, user_update=False, returns="""
    "roles": {"user": {"name": "User", "description": "...", "max_outpath_depth": 5, "is_auto_generated": true,
                       "model_whitelist": [], "model_blacklist": [], "permissions": ["first", "second"],
                       "max_t2i_simultaneous": 32, "allow_unsafe_outpaths": false}}
""")
async def admin_list_roles(call: APICall) -> JSONObject:
    """Admin route to get a list of all available roles, with the permissions each one holds."""
    return {"roles": {role.id: role.describe() for role in call.services.accounts.roles.all()}}


@routes.route("AdminListPermissions", flag=CONFIGURE_ROLES, user_update=False, returns="""
    "permissions": {"perm_name": {"name": "Perm Name", "description": "...", "default": "USER",
                                  "group": {"name": "My Group", "description": "..."},
                                  "safety_level": "UNTESTED", "alt_safety_text": null}},
    "ordered": ["*", "configure_roles", "..."]
""")
async def admin_list_permissions(call: APICall) -> JSONObject:
    """Admin route to get a list of all available permissions, and their ids in display order (by group)."""
    return {"permissions": {flag.id: flag.describe() for flag in LISTED}, "ordered": ordered(LISTED)}


@routes.route("AdminAddRole", flag=CONFIGURE_ROLES, returns='"success": true')
async def admin_add_role(call: APICall, name: Annotated[str, "The name of the new role."]) -> JSONObject:
    """Admin route to create a new user permission role (its id: the name's letters, digits and _, lower-cased);
    it starts with no permissions."""
    await call.services.accounts.roles.add(name)
    return SUCCESS


@routes.route("AdminEditRole", flag=CONFIGURE_ROLES, returns='"success": true')
async def admin_edit_role(
    call: APICall,
    name: Annotated[str, "The name of the role."],
    description: Annotated[str, "The description text for the role."],
    max_outpath_depth: Annotated[int, "The maximum outpath depth allowed for the role."],
    max_t2i_simultaneous: Annotated[int, "The maximum number of simultaneous T2I allowed for the role."],
    allow_unsafe_outpaths: Annotated[bool, "Whether to allow unsafe outpaths for the role."],
    model_whitelist: Annotated[str, "Comma-separated list of model names to whitelist for the role."],
    model_blacklist: Annotated[str, "Comma-separated list of model names to blacklist for the role."],
    permissions: Annotated[str, "Comma-separated list of enabled permission nodes."],
) -> JSONObject:
    """Admin route to edit a permission role (built-in ones too). Every field is checked before anything changes:
    unknown permissions are refused by name, duplicates kept once; the owner role always keeps `*`. Users and keys
    holding the role get the new permissions on their next call."""
    edit = RoleEdit(description, max_outpath_depth, max_t2i_simultaneous, allow_unsafe_outpaths, model_whitelist,
                    model_blacklist, permissions)
    await call.services.accounts.roles.edit(name, edit)
    return SUCCESS


@routes.route("AdminDeleteRole", flag=CONFIGURE_ROLES, returns='"success": true')
async def admin_delete_role(call: APICall, name: Annotated[str, "The name of the role to delete."]) -> JSONObject:
    """Admin route to delete a custom role. Built-in roles cannot be deleted, nor a role a user or an API key still
    holds."""
    await call.services.accounts.delete_role(name)
    return SUCCESS
