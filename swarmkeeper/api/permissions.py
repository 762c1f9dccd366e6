"""Permission flags and roles, as SwarmUI declares them (reference §11).

A flag is declared once, here, as data; a route names its flag in its declaration (see
routes.py), and a role's default flags follow from each flag's default level.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    """Who holds a flag by default (SwarmUI's PermissionDefault)."""

    NOBODY = 0  # the owner only
    ADMINS = 1
    POWERUSERS = 2
    USER = 3
    GUEST = 4


class Safety(IntEnum):
    """How safe a flag is to hand out (SwarmUI's PermSafetyLevel), for the permission list."""

    POWERFUL = 0  # only for trusted users and admins
    RISKY = 1  # not meant to be powerful, but open to abuse
    UNTESTED = 2  # expected to be safe, not reviewed
    SAFE = 3  # reviewed as safe for untrusted users


@dataclass(frozen=True)
class PermissionGroup:
    display_name: str
    description: str


@dataclass(frozen=True)
class PermissionFlag:
    id: str
    display_name: str
    description: str
    default: Level
    group: PermissionGroup
    safety: Safety = Safety.UNTESTED

    def describe(self) -> dict[str, object]:
        """The flag as SwarmUI's AdminListPermissions shows it."""
        return {"name": self.display_name, "description": self.description, "default": self.default.name,
                "group": {"name": self.group.display_name, "description": self.group.description},
                "safety_level": self.safety.name, "alt_safety_text": None}


# Groups and flags with SwarmUI's own ids, names and texts (src/Accounts/Permissions.cs).
ADMIN = PermissionGroup("Admin", "Permissions for server administration access.")
SPECIAL = PermissionGroup("Special", "Special permissions that don't make sense to give out.")
BACKENDS_ADMIN = PermissionGroup("Backends Admin", "Permissions for managing backends.")
CONTROL = PermissionGroup("Control", "Control over common server functionality.")
USER_GROUP = PermissionGroup("User", "Permissions related to basic user access.")
#: Kept for code that named the group of the generate-tab flag before it took SwarmUI's name.
FUNDAMENTAL = USER_GROUP

CONFIGURE_ROLES = PermissionFlag(
    "configure_roles", "Configure Roles", "Allows access to role configuration.\nThis is basically total control, "
    "as you can give yourself more permissions with this.", Level.NOBODY, ADMIN, Safety.POWERFUL)
MANAGE_USERS = PermissionFlag(
    "manage_users", "Manage Users", "Allows access to administrative user management.\nThis is basically total "
    "control, as you can give yourself more permissions with this.", Level.NOBODY, ADMIN, Safety.POWERFUL)
INTERRUPT_OTHERS = PermissionFlag(
    "interrupt_others", "Interrupt Others", "Allows an admin to interrupt other user's sessions at will.",
    Level.ADMINS, ADMIN, Safety.POWERFUL)
SHUTDOWN = PermissionFlag(
    "shutdown", "Shutdown Server", "Allows the user to fully shut down the server.", Level.NOBODY, ADMIN, Safety.SAFE)
AUTOMATED_CONTROL = PermissionFlag(
    "automated_control", "Automated Control", "Allows the user account to be used as an automated remote control "
    "system.", Level.NOBODY, SPECIAL, Safety.POWERFUL)
RESTART = PermissionFlag(
    "restart", "Restart Server", "Allows the user to fully restart the server.", Level.ADMINS, ADMIN, Safety.SAFE)
VIEW_LOGS = PermissionFlag(
    "view_logs", "View Server Logs", "Allows the user to view server logs.", Level.ADMINS, ADMIN, Safety.SAFE)
READ_SERVER_INFO_PANELS = PermissionFlag(
    "read_server_info_panels", "Read Server Info Panels", "Allows the user to read server info panels (resource "
    "usage, connected users, ...).", Level.ADMINS, ADMIN, Safety.SAFE)

VIEW_BACKENDS_LIST = PermissionFlag(
    "view_backends_list", "View Backends List", "Allows the user to view the list of available backends.",
    Level.POWERUSERS, BACKENDS_ADMIN, Safety.SAFE)
ADD_REMOVE_BACKENDS = PermissionFlag(
    "add_remove_backends", "Add/Remove Backends", "Allows the user to add or remove backends.",
    Level.ADMINS, BACKENDS_ADMIN, Safety.POWERFUL)
EDIT_BACKENDS = PermissionFlag(
    "edit_backends", "Edit Backends", "Allows the user to edit backends.", Level.ADMINS, BACKENDS_ADMIN,
    Safety.POWERFUL)
RESTART_BACKENDS = PermissionFlag(
    "restart_backends", "Restart Backends", "Allows the user to restart backends.", Level.POWERUSERS, BACKENDS_ADMIN,
    Safety.SAFE)
TOGGLE_BACKENDS = PermissionFlag(
    "toggle_backends", "Toggle Backends", "Allows the user to toggle backends on or off.", Level.ADMINS,
    BACKENDS_ADMIN, Safety.SAFE)

CONTROL_MODEL_REFRESH = PermissionFlag(
    "control_model_refresh", "Control Model Refresh", "Allows this user to refresh model lists.", Level.POWERUSERS,
    CONTROL, Safety.SAFE)
CONTROL_MEM_CLEAN = PermissionFlag(
    "control_mem_clean", "Control Memory Cleaning", "Allows this user to control memory cleaning (eg cleanup VRAM "
    "or system RAM usage).", Level.POWERUSERS, CONTROL, Safety.SAFE)
LOAD_MODELS_NOW = PermissionFlag(
    "load_models_now", "Load Models Now", "Allows this user to load models immediately across all backends.",
    Level.POWERUSERS, CONTROL, Safety.SAFE)

FUNDAMENTAL_MODEL_ACCESS = PermissionFlag(
    "fundamental_model_access", "Fundamental Model Access", "Allows this user basic access to model list "
    "functionality.", Level.GUEST, USER_GROUP, Safety.SAFE)
FUNDAMENTAL_GENERATE_TAB_ACCESS = PermissionFlag(
    "fundamental_generate_tab_access", "Fundamental Generate Tab Access",
    "Allows this user to access the generate tab. This is basically required to even open the UI.", Level.GUEST,
    USER_GROUP, Safety.SAFE)
BASIC_IMAGE_GENERATION = PermissionFlag(
    "basic_image_generation", "Basic Image Generation", "Allows this user to generate images.", Level.GUEST,
    USER_GROUP, Safety.SAFE)
EDIT_USER_SETTINGS = PermissionFlag(
    "edit_user_settings", "Edit User Settings", "Allows this user to edit their own settings.", Level.USER,
    USER_GROUP, Safety.SAFE)
FUNDAMENTAL_FLAG = PermissionFlag(
    "fundamental", "Fundamental", "Most basic possible permission for core functions.", Level.GUEST, USER_GROUP,
    Safety.SAFE)

VIEW_OTHERS_OUTPUTS = PermissionFlag(
    "view_others_outputs", "View Others' Outputs", "Allows this user to view the outputs of other users.",
    Level.ADMINS, ADMIN, Safety.POWERFUL)

# swarmkeeper's own flags (SwarmUI has no API keys and no audit log).
MANAGE_API_KEYS = PermissionFlag(
    "manage_api_keys", "Manage API Keys", "Allows this user to create, list and revoke API keys for their own "
    "account (keys never hold more than their user does).", Level.USER, USER_GROUP, Safety.SAFE)
VIEW_AUDIT_LOG = PermissionFlag(
    "view_audit_log", "View Audit Log", "Allows the user to read the audit log: who changed which backend, user or "
    "key, and when.", Level.ADMINS, ADMIN, Safety.SAFE)

#: Routes anyone may call before they have a session (GetNewSession, Login): the route checks
#: for itself whether the caller may proceed.
PUBLIC = PermissionFlag(
    "public", "Public", "Routes anyone may call before they have a session.", Level.GUEST, USER_GROUP, Safety.SAFE)

#: Every flag a route may carry (PUBLIC aside), grouped as SwarmUI lists them.
ALL_FLAGS: tuple[PermissionFlag, ...] = (
    AUTOMATED_CONTROL,  # SwarmUI's Special group, after "*"
    CONFIGURE_ROLES, MANAGE_USERS, INTERRUPT_OTHERS, SHUTDOWN, RESTART, VIEW_LOGS, READ_SERVER_INFO_PANELS,
    VIEW_AUDIT_LOG, VIEW_OTHERS_OUTPUTS,
    VIEW_BACKENDS_LIST, ADD_REMOVE_BACKENDS, EDIT_BACKENDS, RESTART_BACKENDS, TOGGLE_BACKENDS,
    CONTROL_MODEL_REFRESH, CONTROL_MEM_CLEAN, LOAD_MODELS_NOW,
    FUNDAMENTAL_MODEL_ACCESS, FUNDAMENTAL_GENERATE_TAB_ACCESS, EDIT_USER_SETTINGS, FUNDAMENTAL_FLAG, MANAGE_API_KEYS,
    BASIC_IMAGE_GENERATION,
)

def ordered(flags: tuple[PermissionFlag, ...]) -> list[str]:
    """Flag ids with each group's flags together, groups in order of first appearance (SwarmUI's
    ``Permissions.OrderedKeys`` after ``FixOrdered``): the order its Users tab lists them in."""
    groups: dict[PermissionGroup, list[str]] = {}
    for flag in flags:
        groups.setdefault(flag.group, []).append(flag.id)
    return [flag_id for ids in groups.values() for flag_id in ids]


#: Built-in roles and the lowest default level each one reaches.
ROLE_LEVELS: dict[str, Level] = {
    "owner": Level.NOBODY,
    "admin": Level.ADMINS,
    "poweruser": Level.POWERUSERS,
    "user": Level.USER,
    "guest": Level.GUEST,
}


@dataclass(frozen=True)
class Role:
    """A built-in role, with SwarmUI's display name and description."""

    id: str
    display_name: str
    description: str


ROLES: tuple[Role, ...] = (
    Role("owner", "Owner", "(Auto Generated Role, cannot delete). The owner of the server, local user when account "
         "system is disabled. Generally should have all permissions ever always."),
    Role("admin", "Admin", "(Auto Generated Role, cannot delete). An administrator of the server, has near-total "
         "control."),
    Role("poweruser", "PowerUser", "(Auto Generated Role, cannot delete). A very advanced, and trusted, user. Has "
         "access to things that could be dangerous or can be maliciously abused."),
    Role("user", "User", "(Auto Generated Role, cannot delete). A general user. The default role for valid "
         "accounts."),
    Role("guest", "Guest", "(Auto Generated Role, cannot delete). An unregistered or unverified guest account. Only "
         "when public unverified access is enabled."),
)


@functools.cache
def role_permissions(role: str, flags: tuple[PermissionFlag, ...] = ALL_FLAGS) -> frozenset[str]:
    """The flag ids a built-in role holds by default; the owner also holds ``*``. (Asked on every
    call of an account-less server, so remembered: roles and flags are fixed for the process.)"""
    reach = ROLE_LEVELS.get(role)
    if reach is None:
        return frozenset()
    held = {flag.id for flag in flags if flag.default >= reach}
    if role == "owner":
        held.add("*")
    return frozenset(held)
