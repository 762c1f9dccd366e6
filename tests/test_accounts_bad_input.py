"""Bad input to the account routes: odd user names (unicode, control characters, SQL), absurd
sizes, wrong types. Every one gets a clear error that does not echo what was sent, and nothing is
stored half-way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from swarmkeeper.accounts.throttle import LoginThrottle, ThrottlePolicy
from tests.accounts_support import PASSWORD, Accounted, accounts_server
from tests.servers import on_loopback, test_config

SQL = "x'); drop table users; --"
BAD_NAMES = {
    "": "A user name is required.",
    "ab": "User names are 3 to 40 characters long (got 2).",
    "a" * 41: "User names are 3 to 40 characters long (got 41).",
    "Alice": "User names are lower-case.",
    "al ice": "User names may only hold the letters a-z, the digits 0-9 and the characters . _ - @.",
    # control characters are refused at the door, for every parameter (textcheck.py)
    "al\x00ice": "Invalid value for parameter 'name': it contains NUL (U+0000) at position 2, which cannot be stored.",
    "al\nice": "Invalid value for parameter 'name': it contains a control character (U+000A) at position 2, which "
               "cannot be stored.",
    "al\x1b[31mice": "Invalid value for parameter 'name': it contains a control character (U+001B) at position 2, "
                     "which cannot be stored.",
    "alice\u200b": "User names may not contain control or invisible characters (found U+200B).",
    "ålice": "User names may only hold the letters a-z, the digits 0-9 and the characters . _ - @.",
    "\u0430dmin": "User names may only hold the letters a-z, the digits 0-9 and the characters . _ - @.",
    SQL: "User names may only hold the letters a-z, the digits 0-9 and the characters . _ - @.",
    "../etc": "User names may only hold the letters a-z, the digits 0-9 and the characters . _ - @.",
    "@alice": "User names start with a letter or a digit.",
    "X'); DROP TABLE users; --": "User names are lower-case.",
}


@pytest.fixture
async def root(app_client_with_accounts: Accounted) -> AsyncIterator[tuple[Accounted, str]]:
    await app_client_with_accounts.add_user("root", "owner")
    yield app_client_with_accounts, await app_client_with_accounts.session_for("root")


async def users(server: Accounted, session: str) -> dict[str, str]:
    return dict((await server.ok("AdminListUsers", session=session))["roles"])


@pytest.mark.parametrize("name", list(BAD_NAMES))
async def test_bad_user_names_are_refused_clearly(root: tuple[Accounted, str], name: str) -> None:
    server, session = root
    message = await server.error("AdminAddUser", {"name": name, "password": PASSWORD, "role": "user"},
                                 session=session)
    assert message == BAD_NAMES[name]
    assert await users(server, session) == {"root": "owner"}


async def test_nothing_is_stored_half_way(root: tuple[Accounted, str]) -> None:
    server, session = root
    cases = [({"name": "bob", "password": PASSWORD, "role": "emperor"},
              "Unknown role; use one of: owner, admin, poweruser, user, guest."),
             ({"name": "bob", "password": "short", "role": "user"}, "Passwords are at least 8 characters long."),
             ({"name": "bob", "password": "p" * 1025, "role": "user"}, "Passwords are at most 1024 characters long."),
             ({"name": "bob", "password": PASSWORD, "role": {"admin": True}},
              "Unknown role; use one of: owner, admin, poweruser, user, guest."),
             ({"name": "root", "password": PASSWORD, "role": "user"}, "A user named 'root' already exists.")]
    for body, message in cases:
        assert await server.error("AdminAddUser", body, session=session) == message
    assert await users(server, session) == {"root": "owner"}
    assert (await server.login("root")).json() == {"success": "true"}  # the failed re-add left root alone


async def test_sql_and_odd_text_at_login_is_just_a_wrong_login(root: tuple[Accounted, str]) -> None:
    server, session = root
    server.accounts.throttle = LoginThrottle(ThrottlePolicy(free_failures=100, lock_after=100))
    for name, password in ((SQL, PASSWORD), ("root", SQL), ("root' --", "' OR '1'='1"),
                           ("\u202eroot", PASSWORD), ("root", "%s%n\\x00")):
        response = await server.login(name, password)
        assert response.json() == {"error_id": "invalid_login", "error": "Invalid username or password."}
    for name, password, refused in (("ro\x00ot", PASSWORD, "username"), ("root", "pass\x00word", "password")):
        response = await server.login(name, password)  # NUL is refused at the door, before any lookup
        assert response.json()["error"].startswith(f"Invalid value for parameter '{refused}': it contains NUL")
    assert await users(server, session) == {"root": "owner"}


async def test_absurd_sizes_are_refused_without_echo(root: tuple[Accounted, str]) -> None:
    server, _ = root
    secret = "S3cret-" * 20000
    assert await server.error("Login", {"username": "root", "password": secret}) == (
        "Passwords are at most 1024 characters long.")
    assert await server.error("Login", {"username": "r" * 5000, "password": PASSWORD}) == (
        "User names are at most 200 characters long.")


async def test_wrong_types_bind_as_swarmui_binds_them(root: tuple[Accounted, str]) -> None:
    server, session = root
    missing = await server.error("AdminAddUser", {"name": "bob", "role": "user"}, session=session)
    assert missing == "Missing required parameter 'password'"
    bad_days = await server.error("CreateAPIKey", {"name": "k", "expires_days": "soon"}, session=session)
    assert bad_days == "Invalid value 'soon' for parameter 'expires_days', must be type 'Double'"
    too_long = await server.error("CreateAPIKey", {"name": "k", "expires_days": 99999}, session=session)
    assert too_long == "expires_days is 0 (never) to 3650."


@pytest.mark.parametrize(("name", "message"), [
    ("", "An API key needs a name (what it is for, e.g. 'nightly-bot')."),
    ("bot\x07", "Invalid value for parameter 'name': it contains a control character (U+0007) at position 3, which "
                "cannot be stored."),  # refused at the door, for every parameter (textcheck.py)
    ("k" * 101, "API key names are at most 100 characters long (got 101)."),
])
async def test_bad_key_names(root: tuple[Accounted, str], name: str, message: str) -> None:
    server, session = root
    assert await server.error("CreateAPIKey", {"name": name}, session=session) == message
    assert (await server.ok("ListAPIKeys", session=session))["keys"] == []


async def test_oversized_credential_headers_on_the_wire(data_dir: Path) -> None:
    """A real server: headers too big for the HTTP parser are refused by it; big-but-parsable ones
    get our clear answers; the server keeps serving."""
    async with on_loopback(test_config(data_dir, require_accounts=True)) as running, \
            httpx.AsyncClient(base_url=running.url) as http:
        huge = await http.post("/API/GetNewSession", json={}, headers={"Authorization": "Bearer swk_" + "a" * 70000})
        assert 400 <= huge.status_code < 500
        big_key = await http.post("/API/ListBackends", json={}, headers={"Authorization": "Bearer swk_" + "a" * 4000})
        assert big_key.status_code == 401 and big_key.json()["error_id"] == "invalid_api_key"
        big_cookie = await http.post("/API/GetNewSession", json={},
                                     headers={"Cookie": "swarm_token=" + "b" * 6000, "X-Forwarded-For": "192.0.2.1"})
        assert big_cookie.json() == {"error": "Invalid or unauthorized."}
        after = await http.post("/API/GetNewSession", json={})
        assert after.status_code == 200 and after.json()["user_id"] == "local"


async def test_the_gate_is_off_for_the_unconfigured(data_dir: Path) -> None:
    async with accounts_server(data_dir, network={"RequiredAuthorization": "   "}) as server:
        assert (await server.new_session()).json() == {"error": "Invalid or unauthorized."}
