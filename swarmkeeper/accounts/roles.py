"""Roles: the five built-in ones (their permissions follow each flag's default level) and the custom
roles an admin makes, with SwarmUI's fields (src/Accounts/Role.cs). A role that was added or edited
is a row of the ``roles`` table, so an edited built-in role keeps its edit across restarts; the
book in memory is what permission checks read (no database wait on a call).

Every change is checked whole before anything is written (one statement), so a refused change
leaves the role as it was.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from swarmkeeper.accounts.errors import AccountError
from swarmkeeper.accounts.names import control_char
from swarmkeeper.api.permissions import ALL_FLAGS, ROLES, role_permissions
from swarmkeeper.db import Database
from swarmkeeper.types import JSONObject

#: SwarmUI's ``UsernameValidator``: what a role id keeps of the name it is made from.
ID_CHARS = frozenset(string.ascii_letters + string.digits + "_")
ID_MIN = 3
ID_MAX = 40
TEXT_MAX = 2000
LIST_MAX = 200
#: Every flag a role may hold: SwarmUI's ``*`` wildcard and each declared flag.
KNOWN_FLAGS: frozenset[str] = frozenset({"*", *(flag.id for flag in ALL_FLAGS)})


@dataclass(frozen=True)
class RoleData:
    """One role with SwarmUI's fields. Only ``permissions`` is enforced by swarmkeeper; the limits
    are kept and shown so SwarmUI's Users tab round-trips them (see docs/differences.md)."""

    id: str
    name: str
    description: str = ""
    permissions: frozenset[str] = field(default_factory=frozenset)
    max_outpath_depth: int = 5
    max_t2i_simultaneous: int = 32
    allow_unsafe_outpaths: bool = False
    model_whitelist: tuple[str, ...] = ()
    model_blacklist: tuple[str, ...] = ()
    is_auto_generated: bool = False

    def describe(self) -> JSONObject:
        """The role as SwarmUI's AdminListRoles shows it."""
        return {"name": self.name, "description": self.description, "max_outpath_depth": self.max_outpath_depth,
                "is_auto_generated": self.is_auto_generated, "model_whitelist": list(self.model_whitelist),
                "model_blacklist": list(self.model_blacklist), "permissions": sorted(self.permissions),
                "max_t2i_simultaneous": self.max_t2i_simultaneous,
                "allow_unsafe_outpaths": self.allow_unsafe_outpaths}


@dataclass(frozen=True)
class RoleEdit:
    """AdminEditRole's fields, as SwarmUI's Users tab sends them (lists comma-separated)."""

    description: str
    max_outpath_depth: int
    max_t2i_simultaneous: int
    allow_unsafe_outpaths: bool
    model_whitelist: str
    model_blacklist: str
    permissions: str


def builtin_roles() -> dict[str, RoleData]:
    return {role.id: RoleData(role.id, role.display_name, role.description, role_permissions(role.id),
                              is_auto_generated=True) for role in ROLES}


def role_id_for(name: str) -> str:
    """SwarmUI's cleaning: keep A-Z, a-z, 0-9 and _, lower-cased; refused when too short or long."""
    cleaned = "".join(char for char in name if char in ID_CHARS).lower()
    if len(cleaned) < ID_MIN:
        raise AccountError("Role name must be at least 3 characters long, A-Z 0-9 only.")
    if len(cleaned) > ID_MAX or len(name) > ID_MAX * 2:
        raise AccountError(f"Role name must be at most {ID_MAX} characters long.")
    bad = control_char(name)
    if bad is not None:
        raise AccountError(f"Role names may not contain control or invisible characters (found {bad}).")
    return cleaned


def split_list(text: str, what: str) -> tuple[str, ...]:
    """A comma-separated list: trimmed, empty entries dropped, duplicates dropped (first kept)."""
    if len(text) > TEXT_MAX * 10:
        raise AccountError(f"The {what} list is too long.")
    items = tuple(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if len(items) > LIST_MAX:
        raise AccountError(f"The {what} list holds {len(items)} entries; at most {LIST_MAX} are allowed.")
    return items


def check_permissions(text: str) -> frozenset[str]:
    flags = split_list(text, "permissions")
    unknown = [flag for flag in flags if flag not in KNOWN_FLAGS]
    if unknown:
        shown = ", ".join(repr(flag[:60]) for flag in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise AccountError(f"Unknown permission(s): {shown}. AdminListPermissions lists the known ones.")
    return frozenset(flags)


def check_number(value: int, what: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise AccountError(f"{what} must be between {low} and {high} (got {value}).")
    return value


def apply_edit(role: RoleData, edit: RoleEdit) -> RoleData:
    """The role after the edit; AccountError (and nothing changed) if any field is bad."""
    if len(edit.description) > TEXT_MAX:
        raise AccountError(f"The description is at most {TEXT_MAX} characters long.")
    bad = control_char(edit.description.replace("\n", "").replace("\t", ""))
    if bad is not None:
        raise AccountError(f"The description may not contain control or invisible characters (found {bad}).")
    permissions = check_permissions(edit.permissions)
    if role.id == "owner" and "*" not in permissions:
        raise AccountError("The owner role always keeps '*' (Full Control), so the server cannot lock itself out.")
    return replace(role, description=edit.description, permissions=permissions,
                   max_outpath_depth=check_number(edit.max_outpath_depth, "max_outpath_depth", 1, 100),
                   max_t2i_simultaneous=check_number(edit.max_t2i_simultaneous, "max_t2i_simultaneous", 1, 10000),
                   allow_unsafe_outpaths=edit.allow_unsafe_outpaths,
                   model_whitelist=split_list(edit.model_whitelist, "model whitelist"),
                   model_blacklist=split_list(edit.model_blacklist, "model blacklist"))


def _row(role: RoleData) -> tuple[object, ...]:
    return (role.id, role.name, role.description, json.dumps(sorted(role.permissions)), role.max_outpath_depth,
            role.max_t2i_simultaneous, int(role.allow_unsafe_outpaths), json.dumps(list(role.model_whitelist)),
            json.dumps(list(role.model_blacklist)))


COLUMNS = ("id, name, description, permissions, max_outpath_depth, max_t2i_simultaneous, allow_unsafe_outpaths, "
           "model_whitelist, model_blacklist")


class RoleBook:
    """Every role, read from memory; changes written through to the database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._roles = builtin_roles()

    async def load(self) -> None:
        roles = builtin_roles()
        for row in await self.db.fetch_all(f"SELECT {COLUMNS} FROM roles ORDER BY rowid"):
            roles[row[0]] = RoleData(
                row[0], row[1], row[2], frozenset(json.loads(row[3])), row[4], row[5], bool(row[6]),
                tuple(json.loads(row[7])), tuple(json.loads(row[8])), is_auto_generated=row[0] in roles)
        self._roles = roles

    def get(self, role_id: str) -> RoleData | None:
        return self._roles.get(role_id)

    def all(self) -> Iterable[RoleData]:
        return self._roles.values()

    def ids(self) -> list[str]:
        return list(self._roles)

    def permissions_of(self, role_id: str) -> frozenset[str]:
        """The flags a role holds (none for a role that does not exist)."""
        role = self._roles.get(role_id)
        return role.permissions if role is not None else frozenset()

    def check(self, role_id: str) -> str:
        if role_id not in self._roles:
            raise AccountError(f"Unknown role; use one of: {', '.join(self._roles)}.")
        return role_id

    async def add(self, name: str) -> RoleData:
        role_id = role_id_for(name)
        if role_id in self._roles:
            raise AccountError("A role by that name already exists.")
        role = RoleData(role_id, name.strip())
        await self.db.execute(f"INSERT INTO roles ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(role))
        self._roles[role_id] = role
        return role

    async def edit(self, role_id: str, edit: RoleEdit) -> RoleData:
        role = self._roles.get(role_id)
        if role is None:
            raise AccountError("No role by that name exists.")
        edited = apply_edit(role, edit)
        await self.db.execute(f"INSERT OR REPLACE INTO roles ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              _row(edited))
        self._roles[role_id] = edited
        return edited

    def deletable(self, role_id: str) -> None:
        """AccountError unless the role exists and is a custom one."""
        role = self._roles.get(role_id)
        if role is None:
            raise AccountError("No role by that name exists.")
        if role.is_auto_generated:
            raise AccountError("That role is an auto-generated core role and cannot be deleted.")

    async def delete(self, role_id: str) -> None:
        """Only a custom role with no holders (the caller checks the holders)."""
        self.deletable(role_id)
        await self.db.execute("DELETE FROM roles WHERE id = ?", (role_id,))
        del self._roles[role_id]
