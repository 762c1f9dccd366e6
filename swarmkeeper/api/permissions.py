"""Permission flags and roles, as SwarmUI declares them (reference §11).

A flag is declared once, here, as data; a route names its flag in its declaration (see
routes.py), and a role's default flags follow from each flag's default level.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    """Who holds a flag by default (SwarmUI's PermissionDefault)."""

    NOBODY = 0  # the owner only
    ADMINS = 1
    POWERUSERS = 2
    USER = 3
    GUEST = 4


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


BACKENDS_ADMIN = PermissionGroup("Backends Admin", "Permissions for managing backends.")
CONTROL = PermissionGroup("Control", "Control over common server functionality.")
ADMIN = PermissionGroup("Admin", "Administrative permissions for the server.")
FUNDAMENTAL = PermissionGroup("Fundamental", "Fundamental permissions to access the basic server functionality.")

VIEW_BACKENDS_LIST = PermissionFlag(
    "view_backends_list", "View Backends List", "Allows the user to view the list of backends.",
    Level.POWERUSERS, BACKENDS_ADMIN)
ADD_REMOVE_BACKENDS = PermissionFlag(
    "add_remove_backends", "Add/Remove Backends", "Allows the user to add or remove backends.",
    Level.ADMINS, BACKENDS_ADMIN)
EDIT_BACKENDS = PermissionFlag(
    "edit_backends", "Edit Backends", "Allows the user to edit backends.", Level.ADMINS, BACKENDS_ADMIN)
RESTART_BACKENDS = PermissionFlag(
    "restart_backends", "Restart Backends", "Allows the user to restart backends.", Level.POWERUSERS, BACKENDS_ADMIN)
TOGGLE_BACKENDS = PermissionFlag(
    "toggle_backends", "Toggle Backends", "Allows the user to enable or disable backends.", Level.ADMINS,
    BACKENDS_ADMIN)
CONTROL_MEM_CLEAN = PermissionFlag(
    "control_mem_clean", "Control Memory Cleaning", "Allows the user to free backend memory.",
    Level.POWERUSERS, CONTROL)
FUNDAMENTAL_GENERATE_TAB_ACCESS = PermissionFlag(
    "fundamental_generate_tab_access", "Fundamental Generate Tab Access",
    "Allows the user to access the basic server status and the generate tab.", Level.GUEST, FUNDAMENTAL)

VIEW_LOGS = PermissionFlag(
    "view_logs", "View Logs", "Allows the user to view the server's logs, backends' included.", Level.ADMINS, ADMIN)

#: Routes anyone may call before they have a session (GetNewSession, Login): the route checks
#: for itself whether the caller may proceed.
PUBLIC = PermissionFlag(
    "public", "Public", "Routes anyone may call before they have a session.", Level.GUEST, FUNDAMENTAL)

ALL_FLAGS: tuple[PermissionFlag, ...] = (
    VIEW_BACKENDS_LIST, ADD_REMOVE_BACKENDS, EDIT_BACKENDS, RESTART_BACKENDS, TOGGLE_BACKENDS,
    CONTROL_MEM_CLEAN, FUNDAMENTAL_GENERATE_TAB_ACCESS, VIEW_LOGS,
)

#: Built-in roles and the lowest default level each one reaches.
ROLE_LEVELS: dict[str, Level] = {
    "owner": Level.NOBODY,
    "admin": Level.ADMINS,
    "poweruser": Level.POWERUSERS,
    "user": Level.USER,
    "guest": Level.GUEST,
}


def role_permissions(role: str, flags: tuple[PermissionFlag, ...] = ALL_FLAGS) -> frozenset[str]:
    """The flag ids a built-in role holds by default; the owner also holds ``*``."""
    reach = ROLE_LEVELS.get(role)
    if reach is None:
        return frozenset()
    held = {flag.id for flag in flags if flag.default >= reach}
    if role == "owner":
        held.add("*")
    return frozenset(held)
