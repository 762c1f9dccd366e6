"""The permission matrix: every route × every role × every kind of credential, each answer as
reference §1.3 and §11 say.

The routes come from the running server's own table (so routes added later are covered with no
edit here), and every handler is swapped for a stub that only says it was reached: the matrix
proves the gate (session, key, permission) and nothing else. The PUBLIC routes (GetNewSession,
Login) keep their real handlers and have tests of their own at the end.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper.accounts.callers import account_user
from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.api.permissions import (
    ADD_REMOVE_BACKENDS,
    ALL_FLAGS,
    CONTROL_MEM_CLEAN,
    EDIT_BACKENDS,
    FUNDAMENTAL_FLAG,
    PUBLIC,
    RESTART_BACKENDS,
    TOGGLE_BACKENDS,
    VIEW_BACKENDS_LIST,
    VIEW_LOGS,
    Level,
    PermissionFlag,
    role_permissions,
)
from swarmkeeper.api.routes import APICall, Handler, ParamType, Route, RouteTable
from swarmkeeper.app import FEATURES, api_routes
from tests.accounts_support import ROLES, Accounted, accounts_server

#: A value of each parameter type that binds (so a permitted call reaches the handler).
SAMPLE: dict[ParamType, Any] = {ParamType.INT32: 0, ParamType.INT64: 0, ParamType.BOOLEAN: False,
                                ParamType.STRING: "x", ParamType.DOUBLE: 0}
MALFORMED_KEY = "swk_not-a-key"
MALFORMED_SESSION = "' OR 1=1; DROP TABLE sessions; --"


def stub(route: Route) -> Handler:
    async def reached(call: APICall, **arguments: Any) -> dict[str, Any]:
        return {"reached": route.name, "user": call.user.id}

    return reached


def body_for(route: Route) -> dict[str, Any]:
    return {param.name: SAMPLE[param.type] for param in route.params if param.type in SAMPLE}


def permitted(role: str, flag: PermissionFlag) -> bool:
    held = role_permissions(role)
    return "*" in held or flag.id in held


@dataclass
class Credentials:
    """Every kind of credential a caller of one role can bring."""

    name: str
    session: str
    key: str
    expired_key: str
    revoked_key: str
    ended_session: str


async def credentials_for(server: Accounted, role: str) -> Credentials:
    name = f"{role}-1"
    await server.add_user(name, role)
    user = account_user(await server.accounts.account(name))
    ended = await server.session_for(name)
    await server.accounts.sessions.end(ended)
    _, expired = await server.accounts.keys.create(name, "old", "", time.time() - 1)
    revoked_key, revoked = await server.accounts.create_key(user, "gone")
    await server.accounts.revoke_key(revoked_key.id)
    return Credentials(name, await server.session_for(name), await server.key_for(name), expired, revoked, ended)


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[Accounted]:
    async with accounts_server(data_dir) as running:
        yield running


def expect(response: httpx.Response, status: int, body: dict[str, Any]) -> str | None:
    """None if the answer is exactly this, else what differs."""
    if response.status_code == status and response.json() == body:
        return None
    return f"expected {status} {body}, got {response.status_code} {response.text}"


def granted_answer(route: Route, role: str, name: str) -> tuple[int, dict[str, Any]]:
    if route.websocket:
        return 400, {"error_id": "bad_request_method", "error": "API route needs websocket, request is HTTP"}
    if permitted(role, route.flag):
        return 200, {"reached": route.name, "user": name}
    return 400, {"error_id": "bad_permissions", "error": "You lack permissions for this route."}


def key_refused(message: str) -> tuple[int, dict[str, Any]]:
    return 401, {"error_id": "invalid_api_key", "error": message}


INVALID_SESSION = (401, {"error_id": "invalid_session_id",
                         "error": "Invalid session ID. You may need to refresh the page."})


async def check_route(server: Accounted, route: Route, role: str, creds: Credentials) -> list[str]:
    body = body_for(route)
    cases: dict[str, tuple[dict[str, Any], tuple[int, dict[str, Any]]]] = {
        "session": ({"session": creds.session}, granted_answer(route, role, creds.name)),
        "api key": ({"key": creds.key}, granted_answer(route, role, creds.name)),
        "none": ({}, (400, {"error_id": "basic_api", "error": "missing session id"})),
        "expired key": ({"key": creds.expired_key}, key_refused("This API key has expired.")),
        "revoked key": ({"key": creds.revoked_key}, key_refused("This API key has been revoked.")),
        "malformed key": ({"key": MALFORMED_KEY}, key_refused(
            "Malformed API key: keys look like swk_<12 hex digits>_<secret>, sent as 'Authorization: Bearer <key>'.")),
        "ended session": ({"session": creds.ended_session}, INVALID_SESSION),
        "malformed session": ({"session": MALFORMED_SESSION}, INVALID_SESSION),
    }
    failures = []
    for kind, (credentials, (status, answer)) in cases.items():
        problem = expect(await server.call(route.name, body, **credentials), status, answer)
        if problem:
            failures.append(f"{route.name} as {role} with {kind}: {problem}")
    return failures


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_answers_every_credential_as_swarmui_says(server: Accounted, role: str) -> None:
    creds = await credentials_for(server, role)
    server.services.routes.wrap(stub)
    guarded = [route for route in server.services.routes if route.flag is not PUBLIC]
    assert len(guarded) >= 20  # the core's routes and the accounts' at least
    failures = [failure for route in guarded for failure in await check_route(server, route, role, creds)]
    assert failures == []


@pytest.mark.parametrize("role", ROLES)
async def test_get_new_session_for_each_credential(server: Accounted, role: str) -> None:
    creds = await credentials_for(server, role)
    expected = sorted(role_permissions(role))
    for credentials in ({"token": await server.token_for(creds.name)}, {"key": creds.key}):
        data = (await server.new_session(**credentials)).json()
        assert (data["user_id"], data["permissions"]) == (creds.name, expected), credentials
    expired = await server.accounts.tokens.issue(creds.name, -1.0)
    logged_out = await server.token_for(creds.name)
    logout = await server.call("Logout", session=await server.session_for(creds.name), token=logged_out)
    assert logout.json() == {"success": "true"}
    for token in (None, expired, logged_out, "zz.zz.zz", "0" * 2000, "6162.." + "x" * 20):
        response = await server.new_session(token=token)
        assert (response.status_code, response.json()) == (200, {"error": "Invalid or unauthorized."}), token
    for key, message in ((creds.expired_key, "This API key has expired."),
                         (creds.revoked_key, "This API key has been revoked.")):
        assert expect(await server.new_session(key=key), *key_refused(message)) is None


async def test_a_key_narrowed_to_a_role_holds_only_what_both_grant(server: Accounted) -> None:
    await server.add_user("root", "owner")
    for role in ROLES:
        key = await server.key_for("root", role=role)
        data = (await server.new_session(key=key)).json()
        assert data["permissions"] == sorted(role_permissions(role)), role


#: The plain HTTP endpoints that need a permission with accounts on (api/credentials.py), and the
#: answer a caller without it gets: a status code, or for /health/ready the body's keys.
HTTP_ENDPOINTS: dict[str, PermissionFlag] = {"/metrics": VIEW_LOGS, "/openapi.json": FUNDAMENTAL_FLAG,
                                             "/health/ready": VIEW_BACKENDS_LIST}


@pytest.mark.parametrize("role", ROLES)
async def test_http_endpoints_answer_each_role_as_its_flags_say(server: Accounted, role: str) -> None:
    creds = await credentials_for(server, role)
    for path, flag in HTTP_ENDPOINTS.items():
        for kind, headers in (("api key", {"Authorization": f"Bearer {creds.key}"}),
                              ("cookie", {"Cookie": f"{COOKIE}={await server.token_for(creds.name)}"}), ("none", {})):
            response = await server.http.get(path, headers=headers)
            server.http.cookies.clear()
            allowed = kind != "none" and permitted(role, flag)
            if path == "/health/ready":
                assert (len(response.json()) > 1) is allowed, (path, role, kind)
            else:
                assert response.status_code == (200 if allowed else 401 if kind == "none" else 403), (path, role, kind)
    assert (await server.http.get("/health/live")).status_code == 200


def test_the_six_backend_flags_are_swarmuis() -> None:
    """Reference §11, written out by hand: ids, display names, group, default level."""
    table = {
        VIEW_BACKENDS_LIST: ("view_backends_list", "View Backends List", Level.POWERUSERS),
        ADD_REMOVE_BACKENDS: ("add_remove_backends", "Add/Remove Backends", Level.ADMINS),
        EDIT_BACKENDS: ("edit_backends", "Edit Backends", Level.ADMINS),
        RESTART_BACKENDS: ("restart_backends", "Restart Backends", Level.POWERUSERS),
        TOGGLE_BACKENDS: ("toggle_backends", "Toggle Backends", Level.ADMINS),
    }
    for flag, (flag_id, name, level) in table.items():
        assert (flag.id, flag.display_name, flag.default) == (flag_id, name, level)
        assert (flag.group.display_name, flag.group.description) == ("Backends Admin",
                                                                      "Permissions for managing backends.")
    assert (CONTROL_MEM_CLEAN.id, CONTROL_MEM_CLEAN.display_name, CONTROL_MEM_CLEAN.default) == (
        "control_mem_clean", "Control Memory Cleaning", Level.POWERUSERS)
    assert (CONTROL_MEM_CLEAN.group.display_name, CONTROL_MEM_CLEAN.group.description) == (
        "Control", "Control over common server functionality.")


def test_roles_hold_swarmuis_defaults() -> None:
    holders = {
        "view_backends_list": {"owner", "admin", "poweruser"}, "add_remove_backends": {"owner", "admin"},
        "edit_backends": {"owner", "admin"}, "restart_backends": {"owner", "admin", "poweruser"},
        "toggle_backends": {"owner", "admin"}, "control_mem_clean": {"owner", "admin", "poweruser"},
        "manage_users": {"owner"}, "fundamental_generate_tab_access": set(ROLES),
    }
    for flag_id, roles in holders.items():
        assert {role for role in ROLES if flag_id in role_permissions(role)} == roles, flag_id
    assert "*" in role_permissions("owner") and all("*" not in role_permissions(r) for r in ROLES[1:])
    assert role_permissions("nobody") == frozenset()


def test_every_route_carries_a_registered_flag() -> None:
    """A route cannot be declared without a flag, and its flag must be one roles know of."""
    with pytest.raises(TypeError):
        RouteTable().route("NoFlag")  # type: ignore[call-arg]
    known = {flag.id for flag in ALL_FLAGS} | {PUBLIC.id}
    routes = list(api_routes(FEATURES))
    assert [route.name for route in routes if route.flag.id not in known] == []
    assert {route.name for route in routes if route.flag is PUBLIC} == {"GetNewSession", "Login"}


def test_the_server_tab_routes_carry_swarmuis_flags() -> None:
    """Each route of SwarmUI's Server tab with its AdminAPI.cs flag, and each flag with its
    Permissions.cs id, name, group and default level (who holds it)."""
    routes = {route.name: route.flag for route in api_routes(FEATURES)}
    expected = {
        "GetServerResourceInfo": ("read_server_info_panels", "Read Server Info Panels", Level.ADMINS),
        "ListConnectedUsers": ("read_server_info_panels", "Read Server Info Panels", Level.ADMINS),
        "AdminInterruptUser": ("interrupt_others", "Interrupt Others", Level.ADMINS),
        "ShutdownServer": ("shutdown", "Shutdown Server", Level.NOBODY),
        "CheckForUpdates": ("restart", "Restart Server", Level.ADMINS),
        "UpdateAndRestart": ("restart", "Restart Server", Level.ADMINS),
        "AdminGetUserInfo": ("manage_users", "Manage Users", Level.NOBODY),
        "AdminChangeUserSettings": ("manage_users", "Manage Users", Level.NOBODY),
        "AdminAddRole": ("configure_roles", "Configure Roles", Level.NOBODY),
        "AdminEditRole": ("configure_roles", "Configure Roles", Level.NOBODY),
        "AdminDeleteRole": ("configure_roles", "Configure Roles", Level.NOBODY),
        "AdminListRoles": ("configure_roles", "Configure Roles", Level.NOBODY),
        "AdminListPermissions": ("configure_roles", "Configure Roles", Level.NOBODY),
    }
    for name, (flag_id, display, level) in expected.items():
        flag = routes[name]
        assert (flag.id, flag.display_name, flag.default, flag.group.display_name) == (
            flag_id, display, level, "Admin"), name
    holders = {"read_server_info_panels": {"owner", "admin"}, "interrupt_others": {"owner", "admin"},
               "shutdown": {"owner"}, "restart": {"owner", "admin"}}
    for flag_id, roles in holders.items():
        assert {role for role in ROLES if flag_id in role_permissions(role)} == roles, flag_id
