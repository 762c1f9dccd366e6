"""Settings that may hold secrets without being SwarmUI secrets (issue 13, point 11): a Swarm-API
backend's ``OtherHeaders`` (often an API token) is shown as it is to callers who may edit
backends, with each header value masked for everyone else, and never written to the audit log."""

from __future__ import annotations

import sqlite3

import pytest

from swarmkeeper.backends.settings import MASKED, Private, Setting, SettingKind
from swarmkeeper.backends.swarm_settings import TYPE_ID as SWARM
from swarmkeeper.types import SECRET_PLACEHOLDER
from tests.accounts_support import Accounted

TOKEN = "tok-51c9e0-only-for-editors"
HEADERS = f"X-Api-Key: {TOKEN}\nX-Team:  blue team"
MASKED_HEADERS = f"X-Api-Key: {MASKED}\nX-Team: {MASKED}"
AUTHORIZATION = "Bearer auth-9d2b-never-shown"


@pytest.mark.parametrize(("value", "shown"), [
    ("", ""),
    ("A: 1", f"A: {MASKED}"),
    ("A: 1\n\nB:2:3", f"A: {MASKED}\n\nB: {MASKED}"),
    ("A:", "A:"),
    ("no colon at all, a token maybe", MASKED),
    ("Bad Name: x", MASKED),
    (": only a value", MASKED),
])
def test_header_lines_keep_their_names_and_lose_their_values(value: str, shown: str) -> None:
    setting = Setting("H", SettingKind.TEXT, "", private=Private.HEADER_VALUES)
    assert setting.public(value, editor=False) == shown
    assert setting.public(value, editor=True) == value


def test_a_whole_private_value_and_a_secret() -> None:
    private = Setting("P", SettingKind.TEXT, "", private=Private.WHOLE)
    assert (private.public("x", editor=False), private.public("x", editor=True)) == (MASKED, "x")
    secret = Setting("S", SettingKind.TEXT, "", secret=True)
    assert secret.public("x", editor=True) == SECRET_PLACEHOLDER  # a secret is masked for everyone


async def swarm_backend_with_headers(server: Accounted, admin: str) -> int:
    backend = int((await server.ok("AddNewBackend", {"type_id": SWARM}, session=admin))["id"])
    await server.ok("ToggleBackend", {"backend_id": backend, "enabled": False}, session=admin)
    edited = await server.ok("EditBackend", {"backend_id": backend, "title": "remote", "settings": {
        "Address": "http://127.0.0.1:9", "OtherHeaders": HEADERS, "AuthorizationHeader": AUTHORIZATION}},
        session=admin)
    assert edited["settings"]["OtherHeaders"] == HEADERS  # the editor sees what they saved
    return backend


async def test_a_poweruser_sees_masked_headers_an_admin_sees_them(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("ada", "admin")
    await server.add_user("pat", "poweruser")
    admin, power = await server.session_for("ada"), await server.session_for("pat")
    backend = await swarm_backend_with_headers(server, admin)
    for _ in range(2):  # the listing cache keeps the two views apart, both ways round
        seen = (await server.ok("ListBackends", session=power))[str(backend)]["settings"]
        assert (seen["OtherHeaders"], seen["AuthorizationHeader"]) == (MASKED_HEADERS, SECRET_PLACEHOLDER)
        shown = (await server.ok("ListBackends", session=admin))[str(backend)]["settings"]
        assert (shown["OtherHeaders"], shown["AuthorizationHeader"]) == (HEADERS, SECRET_PLACEHOLDER)
    narrowed = await server.key_for("ada", role="poweruser")  # a key narrowed below edit_backends
    listing = await server.ok("ListBackends", key=narrowed)
    assert listing[str(backend)]["settings"]["OtherHeaders"] == MASKED_HEADERS
    full = await server.ok("ListBackends", {"full_data": True, "nonreal": True}, session=power)
    assert TOKEN not in str(full)


async def test_the_audit_log_holds_no_header_value(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("ada", "admin")
    admin = await server.session_for("ada")
    backend = await swarm_backend_with_headers(server, admin)
    refused = await server.call("EditBackend", {"backend_id": backend, "title": "x", "settings": {
        "OtherHeaders": f"X-Api-Key: {TOKEN}", "ConnectionAttemptTimeoutSeconds": "soon"}}, session=admin)
    assert "error" in refused.json()
    entries = (await server.ok("ListAuditLog", {"backend_id": str(backend)}, session=admin))["entries"]
    edits = [entry for entry in entries if entry["route"] == "EditBackend"]
    assert len(edits) == 2
    assert all(entry["changes"]["settings"]["OtherHeaders"] == SECRET_PLACEHOLDER for entry in edits)
    with sqlite3.connect(server.services.config.db_path) as db:
        stored = " ".join(str(row) for row in db.execute("SELECT * FROM audit_log"))
    assert "EditBackend" in stored and TOKEN not in stored and "blue team" not in stored
    assert AUTHORIZATION not in stored
