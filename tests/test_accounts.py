"""Accounts: Login and its cookie, GetNewSession for the logged-in user, Logout, role changes,
password changes and removal taking effect at once, and the localhost bypass."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from swarmkeeper.accounts.login_routes import ACCOUNTS_OFF
from swarmkeeper.accounts.passwords import client_prehash
from swarmkeeper.accounts.tokens import COOKIE, parse_token
from swarmkeeper.api.permissions import role_permissions
from tests.accounts_support import PASSWORD, Accounted, accounts_server, write_settings
from tests.servers import in_process, on_loopback, test_config

INVALID = {"error_id": "invalid_login", "error": "Invalid username or password."}
NO_USER = {"error": "Invalid or unauthorized."}


async def test_login_sets_swarmuis_cookie_and_get_new_session_reads_it(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("alice", "poweruser")
    response = await server.login("alice")
    assert response.status_code == 200 and response.json() == {"success": "true"}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/" in cookie and f"Max-Age={30 * 86400}" in cookie and "Secure" not in cookie
    token = response.cookies[COOKIE]
    parts = parse_token(token)
    assert parts is not None and parts.user == "alice"
    data = (await server.new_session(token=token)).json()
    assert data["user_id"] == "alice"
    assert data["permissions"] == sorted(role_permissions("poweruser"))
    listing = await server.call("ListBackends", session=data["session_id"])
    assert listing.status_code == 200 and listing.json() == {}


async def test_the_cookie_is_secure_behind_https(app_client_with_accounts: Accounted) -> None:
    await app_client_with_accounts.add_user("alice", "user")
    response = await app_client_with_accounts.login("alice", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in response.headers["set-cookie"]


async def test_wrong_password_and_unknown_user_answer_alike(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("alice", "user")
    for name, password in (("alice", "wrong password"), ("nobody", PASSWORD), ("alice", "")):
        response = await server.login(name, password)
        assert (response.status_code, response.json()) == (200, INVALID)
        assert "set-cookie" not in response.headers


async def test_every_password_form_swarmui_clients_send_logs_in(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("alice", "user")
    prehash = client_prehash("alice", PASSWORD)
    fallback = f"__swarmdoprehash:swarmclientpw:alice:{PASSWORD}"
    assert prehash == hashlib.sha256(f"swarmclientpw:alice:{PASSWORD}".encode()).hexdigest()
    for name, password in (("alice", PASSWORD), ("alice", prehash), ("alice", prehash.upper()),
                           ("alice", fallback), ("ALICE", PASSWORD), (" alice ", PASSWORD)):
        assert (await server.login(name, password)).json() == {"success": "true"}, (name, password[:20])


async def test_no_credential_no_session(app_client_with_accounts: Accounted) -> None:
    response = await app_client_with_accounts.new_session()
    assert (response.status_code, response.json()) == (200, NO_USER)
    claimed = await app_client_with_accounts.new_session(headers={"X-SWARM-USER_ID": "root"})
    assert claimed.json() == NO_USER  # the account-less user header means nothing with accounts on


async def test_logout_ends_the_login_and_every_session(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("alice", "user")
    token = await server.token_for("alice")
    other_token = await server.token_for("alice")
    first, second = (await server.session_for("alice")), (await server.session_for("alice"))
    response = await server.call("Logout", session=first, token=token)
    assert response.json() == {"success": "true"}
    assert "Max-Age=0" in response.headers["set-cookie"]
    for session in (first, second):
        assert (await server.call("GetCurrentStatus", session=session)).status_code == 401
    assert (await server.new_session(token=token)).json() == NO_USER
    assert "session_id" in (await server.new_session(token=other_token)).json()  # another device stays in


async def test_a_role_change_applies_to_the_next_call(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "owner")
    await server.add_user("bob", "user")
    root, bob = await server.session_for("root"), await server.session_for("bob")
    assert (await server.call("ListBackends", session=bob)).json()["error_id"] == "bad_permissions"
    await server.ok("AdminSetUserRole", {"name": "bob", "role": "poweruser"}, session=root)
    assert (await server.call("ListBackends", session=bob)).json() == {}
    assert (await server.ok("AdminListUsers", session=root)) == {"users": ["bob", "root"],
                                                                  "roles": {"bob": "poweruser", "root": "owner"}}


async def test_a_new_password_ends_logins_and_sessions(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "owner")
    await server.add_user("bob", "user")
    root = await server.session_for("root")
    token, session = await server.token_for("bob"), await server.session_for("bob")
    await server.ok("AdminSetUserPassword", {"name": "bob", "password": "a brand new secret"}, session=root)
    assert (await server.call("GetCurrentStatus", session=session)).status_code == 401
    assert (await server.new_session(token=token)).json() == NO_USER
    assert (await server.login("bob")).json() == INVALID
    assert (await server.login("bob", "a brand new secret")).json() == {"success": "true"}


async def test_change_own_password(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("bob", "user")
    session = await server.session_for("bob")
    wrong = await server.error("ChangePassword", {"oldPassword": "nope nope", "newPassword": "another one!"},
                               session=session)
    assert wrong == "The current password is not right."
    short = await server.error("ChangePassword", {"oldPassword": PASSWORD, "newPassword": "short"}, session=session)
    assert short == "Passwords are at least 8 characters long."
    assert (await server.login("bob")).json() == {"success": "true"}  # nothing changed yet
    session = await server.session_for("bob")
    prehashed_new = client_prehash("bob", "another one!")
    await server.ok("ChangePassword", {"oldPassword": PASSWORD, "newPassword": prehashed_new}, session=session)
    assert (await server.call("GetCurrentStatus", session=session)).status_code == 401
    assert (await server.login("bob", "another one!")).json() == {"success": "true"}


async def test_removing_a_user_ends_everything_of_theirs(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "owner")
    await server.add_user("bob", "admin")
    root = await server.session_for("root")
    token, session, key = await server.token_for("bob"), await server.session_for("bob"), await server.key_for("bob")
    await server.ok("AdminDeleteUser", {"name": "bob"}, session=root)
    assert (await server.call("GetCurrentStatus", session=session)).status_code == 401
    assert (await server.new_session(token=token)).json() == NO_USER
    assert (await server.call("ListBackends", key=key)).json()["error"] == "Invalid API key."
    assert (await server.ok("AdminListUsers", session=root))["users"] == ["root"]


async def test_owners_keep_the_server(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "owner")
    root = await server.session_for("root")
    own = await server.error("AdminDeleteUser", {"name": "root"}, session=root)
    assert own == "You cannot remove your own account."
    assert await server.error("AdminSetUserRole", {"name": "root", "role": "admin"}, session=root) == (
        "That is the last owner; make another owner first.")
    await server.ok("AdminAddUser", {"name": "second", "password": PASSWORD, "role": "owner"}, session=root)
    await server.ok("AdminSetUserRole", {"name": "root", "role": "admin"}, session=root)
    assert (await server.ok("AdminListUsers", session=await server.session_for("second")))["roles"]["root"] == "admin"


async def test_roles_and_permissions_lists_have_swarmuis_shapes(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "owner")
    root = await server.session_for("root")
    roles = (await server.ok("AdminListRoles", session=root))["roles"]
    assert list(roles) == ["owner", "admin", "poweruser", "user", "guest"]
    assert roles["poweruser"]["name"] == "PowerUser"
    assert roles["user"]["description"].endswith("A general user. The default role for valid accounts.")
    assert roles["guest"]["permissions"] == sorted(role_permissions("guest"))
    permissions = (await server.ok("AdminListPermissions", session=root))["permissions"]
    assert permissions["*"]["name"] == "Full Control"
    assert permissions["view_backends_list"] == {
        "name": "View Backends List", "description": "Allows the user to view the list of available backends.",
        "default": "POWERUSERS", "safety_level": "SAFE", "alt_safety_text": None,
        "group": {"name": "Backends Admin", "description": "Permissions for managing backends."}}


async def test_localhost_bypass_acts_as_the_local_owner_only_for_direct_local_calls(data_dir: Path) -> None:
    async with accounts_server(data_dir, client=("127.0.0.1", 5000), bypass=True) as local:
        data = (await local.new_session()).json()
        assert data["user_id"] == "local" and data["permissions"][0] == "*"
        assert (await local.call("ListBackends", session=data["session_id"])).json() == {}
        proxied = await local.new_session(headers={"X-Forwarded-For": "198.51.100.9"})
        assert proxied.json() == NO_USER
        from_proxy = await local.call("ListBackends", session=data["session_id"],
                                      headers={"X-Forwarded-For": "198.51.100.9"})
        assert from_proxy.status_code == 401  # the local owner's session is good only locally


async def test_without_the_bypass_local_callers_log_in_too(data_dir: Path) -> None:
    async with accounts_server(data_dir, client=("127.0.0.1", 5000), bypass=False) as local:
        assert (await local.new_session()).json() == NO_USER


async def test_the_local_owners_name_is_reserved(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "owner")
    message = await server.error("AdminAddUser", {"name": "local", "password": PASSWORD, "role": "user"},
                                 session=await server.session_for("root"))
    assert message == "The name 'local' is the local owner's (--user_id); choose another."


async def test_account_less_mode_has_no_login_and_ignores_keys(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as client:
        assert await client.error("Login", username="alice", password=PASSWORD) == ACCOUNTS_OFF
        assert await client.error("Logout") == ACCOUNTS_OFF
        response = await client.http.post("/API/GetNewSession", json={},
                                           headers={"Authorization": "Bearer swk_0123456789ab_" + "x" * 40})
        assert response.json()["user_id"] == "local"


async def test_login_over_the_wire_with_a_browser_like_client(data_dir: Path) -> None:
    """A real uvicorn socket: the cookie Login sets is kept by the client and read by GetNewSession."""
    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": False})
    async with on_loopback(test_config(data_dir, require_accounts=True)) as running, \
            httpx.AsyncClient(base_url=running.url) as browser:
        await running.services.accounts.add_user("alice", client_prehash("alice", PASSWORD), "admin")
        assert (await browser.post("/API/GetNewSession", json={})).json() == NO_USER
        login = await browser.post("/API/Login", json={"username": "alice", "password": PASSWORD})
        assert login.json() == {"success": "true"} and COOKIE in browser.cookies
        session = (await browser.post("/API/GetNewSession", json={})).json()
        assert session["user_id"] == "alice" and "add_remove_backends" in session["permissions"]
        logout = await browser.post("/API/Logout", json={"session_id": session["session_id"]})
        assert logout.json() == {"success": "true"} and COOKIE not in browser.cookies
        assert (await browser.post("/API/GetNewSession", json={})).json() == NO_USER
