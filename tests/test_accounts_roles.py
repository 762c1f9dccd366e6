"""Roles as SwarmUI's Users tab manages them: the full role and permission shapes (with ``ordered``),
custom roles added, edited and deleted through the API, taking effect on the holder's next call,
kept across a restart, and the bad input the issue lists refused in SwarmUI's words with nothing
half-changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarmkeeper.api.permissions import ALL_FLAGS, role_permissions
from tests.accounts_support import Accounted, accounts_server

ROLE_FIELDS = {"name", "description", "max_outpath_depth", "is_auto_generated", "model_whitelist",
               "model_blacklist", "permissions", "max_t2i_simultaneous", "allow_unsafe_outpaths"}


def edit(name: str, **changes: Any) -> dict[str, Any]:
    """An AdminEditRole body as SwarmUI's Users tab sends it."""
    body = {"name": name, "description": "", "max_outpath_depth": 5, "max_t2i_simultaneous": 32,
            "allow_unsafe_outpaths": False, "model_whitelist": "", "model_blacklist": "", "permissions": ""}
    return {**body, **changes}


async def owner_session(server: Accounted) -> str:
    await server.add_user("root", "owner")
    return await server.session_for("root")


async def test_roles_carry_swarmuis_fields_and_permissions_come_ordered(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    root = await owner_session(server)
    roles = (await server.ok("AdminListRoles", session=root))["roles"]
    assert all(set(role) == ROLE_FIELDS for role in roles.values())
    assert roles["user"]["max_outpath_depth"] == 5 and roles["user"]["max_t2i_simultaneous"] == 32
    assert roles["user"]["is_auto_generated"] is True and roles["user"]["model_whitelist"] == []
    answer = await server.ok("AdminListPermissions", session=root)
    ordered = answer["ordered"]
    assert sorted(ordered) == sorted(answer["permissions"]) and ordered[0] == "*"
    groups = [answer["permissions"][flag]["group"]["name"] for flag in ordered]
    assert groups == sorted(groups, key=groups.index)  # each group's flags together, as the Users tab draws them
    assert {"read_server_info_panels", "shutdown", "restart", "interrupt_others"} <= set(ordered)


async def test_a_custom_role_grants_exactly_its_permissions_on_the_next_call(
        app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    root = await owner_session(server)
    assert await server.ok("AdminAddRole", {"name": "Viewer_Ops"}, session=root) == {"success": True}
    role = (await server.ok("AdminListRoles", session=root))["roles"]["viewer_ops"]
    assert (role["name"], role["permissions"], role["is_auto_generated"]) == ("Viewer_Ops", [], False)
    await server.add_user("vera", "user")
    await server.ok("AdminSetUserRole", {"name": "vera", "role": "viewer_ops"}, session=root)
    vera = await server.session_for("vera")
    refused = await server.call("ListBackends", session=vera)
    assert refused.json()["error_id"] == "bad_permissions"
    await server.ok("AdminEditRole", edit("viewer_ops", description="Watches backends",
                                          permissions="view_backends_list, read_server_info_panels,"
                                                      "view_backends_list", model_whitelist="sdxl/, flux/",
                                          max_t2i_simultaneous=4), session=root)
    assert (await server.call("ListBackends", session=vera)).json() == {}
    role = (await server.ok("AdminListRoles", session=root))["roles"]["viewer_ops"]
    assert role["permissions"] == ["read_server_info_panels", "view_backends_list"]
    assert (role["description"], role["model_whitelist"], role["max_t2i_simultaneous"]) == (
        "Watches backends", ["sdxl/", "flux/"], 4)
    info = await server.ok("AdminGetUserInfo", {"name": "vera"}, session=root)
    assert info == {"user_id": "vera", "password_set_by_admin": False, "settings": {}, "oauth_email": "",
                    "max_t2i": 4}


async def test_roles_survive_a_restart(data_dir: Path) -> None:
    async with accounts_server(data_dir) as server:
        root = await owner_session(server)
        await server.ok("AdminAddRole", {"name": "night_shift"}, session=root)
        await server.ok("AdminEditRole", edit("night_shift", permissions="restart_backends"), session=root)
        await server.ok("AdminEditRole", edit("guest", description="Edited guest", permissions=""), session=root)
    async with accounts_server(data_dir) as again:
        root = await again.session_for("root")
        roles = (await again.ok("AdminListRoles", session=root))["roles"]
        assert roles["night_shift"]["permissions"] == ["restart_backends"]
        assert (roles["guest"]["description"], roles["guest"]["permissions"]) == ("Edited guest", [])
        assert roles["guest"]["is_auto_generated"] is True


async def test_bad_role_input_is_refused_in_swarmuis_words_and_nothing_changes(
        app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    root = await owner_session(server)
    await server.ok("AdminAddRole", {"name": "ops"}, session=root)
    before = (await server.ok("AdminListRoles", session=root))["roles"]
    short = "Role name must be at least 3 characters long, A-Z 0-9 only."
    for name in ("", "  ", "a!", "é€ü"):
        assert await server.error("AdminAddRole", {"name": name}, session=root) == short, name
    assert await server.error("AdminAddRole", {"name": "\x00\x01\x02"}, session=root) == (  # refused at the door
        "Invalid value for parameter 'name': it contains NUL (U+0000) at position 0, which cannot be stored.")
    assert await server.error("AdminAddRole", {"name": "x" * 5000}, session=root) == (
        "Role name must be at most 40 characters long.")
    assert await server.error("AdminAddRole", {"name": "night\u200bshift"}, session=root) == (
        "Role names may not contain control or invisible characters (found U+200B).")
    assert await server.error("AdminAddRole", {"name": "OPS"}, session=root) == "A role by that name already exists."
    assert await server.error("AdminAddRole", {"name": "owner"}, session=root) == "A role by that name already exists."
    bad_edits = {
        "Unknown permission(s): 'fly'. AdminListPermissions lists the known ones.":
            edit("ops", permissions="view_logs,fly", description="changed"),
        "The permissions list holds 1000 entries; at most 200 are allowed.":
            edit("ops", permissions=",".join(f"p{i}" for i in range(1000))),
        "max_t2i_simultaneous must be between 1 and 10000 (got 0).": edit("ops", max_t2i_simultaneous=0),
        "No role by that name exists.": edit("nope"),
        "The permissions list is too long.": edit("ops", permissions="x" * 30000),
        "Invalid value for parameter 'description': it contains NUL (U+0000) at position 1, which cannot be stored.":
            edit("ops", description="a\x00b"),
        "The owner role always keeps '*' (Full Control), so the server cannot lock itself out.":
            edit("owner", permissions="view_logs"),
    }
    for message, body in bad_edits.items():
        assert await server.error("AdminEditRole", body, session=root) == message
    assert (await server.ok("AdminListRoles", session=root))["roles"] == before
    assert "Invalid value" in await server.error("AdminEditRole", edit("ops", max_outpath_depth="deep"), session=root)


async def test_deleting_roles(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    root = await owner_session(server)
    await server.ok("AdminAddRole", {"name": "temp"}, session=root)
    await server.ok("AdminEditRole", edit("temp", permissions="view_backends_list"), session=root)
    await server.add_user("tess", "temp")
    assert await server.error("AdminDeleteRole", {"name": "temp"}, session=root) == (
        "That role is held by 1 user(s) (tess); give them another role first.")
    await server.ok("AdminSetUserRole", {"name": "tess", "role": "user"}, session=root)
    await server.key_for("root", role="temp")
    assert await server.error("AdminDeleteRole", {"name": "temp"}, session=root) == (
        "1 API key(s) are narrowed to that role; revoke them first.")
    for key in await server.accounts.keys.listing("root"):
        await server.accounts.revoke_key(key.id)
    assert await server.error("AdminDeleteRole", {"name": "user"}, session=root) == (
        "That role is an auto-generated core role and cannot be deleted.")
    assert await server.error("AdminDeleteRole", {"name": "nope"}, session=root) == "No role by that name exists."
    assert await server.ok("AdminDeleteRole", {"name": "temp"}, session=root) == {"success": True}
    assert "temp" not in (await server.ok("AdminListRoles", session=root))["roles"]
    assert await server.error("AdminSetUserRole", {"name": "tess", "role": "temp"}, session=root) == (
        "Unknown role; use one of: owner, admin, poweruser, user, guest.")


async def test_user_info_and_settings(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    root = await owner_session(server)
    await server.add_user("uma", "user")
    assert (await server.ok("AdminGetUserInfo", {"name": "uma"}, session=root))["password_set_by_admin"] is False
    await server.ok("AdminSetUserPassword", {"name": "uma", "password": "another long password"}, session=root)
    info = await server.ok("AdminGetUserInfo", {"name": "uma"}, session=root)
    assert info["password_set_by_admin"] is True and info["max_t2i"] == 32
    assert await server.ok("AdminChangeUserSettings", {"name": "uma", "settings": {}}, session=root) == {
        "success": True}
    assert await server.error("AdminChangeUserSettings", {"name": "uma", "settings": {"theme": "dark"}},
                              session=root) == ("Unknown user setting(s): 'theme'. swarmkeeper keeps no per-user "
                                                "settings.")
    assert await server.error("AdminChangeUserSettings", {"name": "uma", "settings": [1]}, session=root) == (
        "'settings' must be an object of setting ID to value.")
    for route in ("AdminGetUserInfo", "AdminChangeUserSettings"):
        assert await server.error(route, {"name": "ghost", "settings": {}}, session=root) == (
            "No user by that name exists.")


def test_every_flag_a_role_may_hold_is_listed() -> None:
    assert role_permissions("owner") == {"*", *(flag.id for flag in ALL_FLAGS)}
