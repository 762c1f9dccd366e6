"""The audit log: every changing call with who, when, where, which backend, what (secrets
redacted) and how it ended; read newest first through ListAuditLog and ``swarmkeeper audit``,
filtered by backend and user."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from swarmkeeper import cli
from swarmkeeper.accounts.redact import REDACTED, redact
from swarmkeeper.types import SECRET_PLACEHOLDER
from tests.accounts_support import PASSWORD, Accounted
from tests.servers import in_process, test_config

TOKEN = "tok-7f3a9c-very-private"


@pytest.fixture
async def admin(app_client_with_accounts: Accounted) -> tuple[Accounted, str]:
    await app_client_with_accounts.add_user("ada", "admin")
    return app_client_with_accounts, await app_client_with_accounts.session_for("ada")


async def entries(server: Accounted, session: str, **filters: Any) -> list[dict[str, Any]]:
    return list((await server.ok("ListAuditLog", filters, session=session))["entries"])


async def test_backend_changes_are_recorded_newest_first(admin: tuple[Accounted, str]) -> None:
    server, session = admin
    started = time.time()
    backend = (await server.ok("AddNewBackend", {"type_id": "swarmkeeper_dummy"}, session=session))["id"]
    await server.ok("EditBackend", {"backend_id": backend, "title": "GPU 0", "new_id": 5,
                                    "settings": {"Address": "dummy", "Token": TOKEN, "OverQueue": "2"}},
                    session=session)
    await server.ok("ToggleBackend", {"backend_id": 5, "enabled": False}, session=session)
    await server.ok("RestartBackends", {"backend": "all"}, session=session)
    await server.ok("ListBackends", session=session)  # reads are not recorded
    log = await entries(server, session)
    assert [(e["route"], e["backend_id"], e["new_backend_id"], e["outcome"]) for e in log] == [
        ("RestartBackends", "all", None, "ok"),
        ("ToggleBackend", "5", None, "ok"),
        ("EditBackend", "0", "5", "ok"),
        ("AddNewBackend", "0", None, "ok"),
        ("Login", None, None, "ok"),
    ]
    assert all(e["user"] == "ada" and e["address"] == "203.0.113.7" for e in log)
    assert all(e["time"] >= started for e in log[:4])
    assert log[2]["changes"] == {"backend_id": 0, "title": "GPU 0", "new_id": 5,
                                 "settings": {"Address": "dummy", "Token": SECRET_PLACEHOLDER, "OverQueue": "2"}}
    assert log[1]["changes"] == {"backend_id": 5, "enabled": False}


async def test_a_call_through_a_key_names_the_key(admin: tuple[Accounted, str]) -> None:
    server, session = admin
    created = await server.ok("CreateAPIKey", {"name": "bot"}, session=session)
    await server.ok("AddNewBackend", {"type_id": "swarmkeeper_dummy"}, key=created["key"])
    newest = (await entries(server, session))[0]
    assert (newest["user"], newest["changes"]) == ("ada", {"type_id": "swarmkeeper_dummy",
                                                           "_via_key": created["prefix"]})


async def test_filters_by_backend_user_and_page(admin: tuple[Accounted, str]) -> None:
    server, session = admin
    await server.add_user("bob", "admin")
    bob = await server.session_for("bob")
    for who in (session, bob, session):
        await server.ok("AddNewBackend", {"type_id": "swarmkeeper_dummy"}, session=who)
    await server.ok("RestartBackends", {"backend": "2"}, session=bob)
    await server.ok("RestartBackends", {"backend": "all"}, session=session)
    assert [e["route"] for e in await entries(server, session, backend="2")] == [
        "RestartBackends", "RestartBackends", "AddNewBackend"]
    assert [(e["route"], e["backend_id"]) for e in await entries(server, session, user="bob")] == [
        ("RestartBackends", "2"), ("AddNewBackend", "1"), ("Login", None)]
    newest = await entries(server, session, limit=2)
    assert [e["backend_id"] for e in newest] == ["all", "2"]
    older = await entries(server, session, limit=2, before=newest[-1]["id"])
    assert [e["backend_id"] for e in older] == ["2", "1"]


async def test_refusals_are_recorded_with_their_reason(admin: tuple[Accounted, str]) -> None:
    server, session = admin
    assert (await server.ok("DeleteBackend", {"backend_id": 9}, session=session)) == {
        "result": "Already didn't exist."}
    message = await server.error("EditBackend", {"backend_id": 3, "title": "", "settings": {}}, session=session)
    assert message == "Invalid backend ID 3"
    newest = (await entries(server, session))[0]
    assert (newest["route"], newest["backend_id"], newest["outcome"]) == ("EditBackend", "3",
                                                                          "error: Invalid backend ID 3")


async def test_account_changes_are_recorded_and_passwords_never(admin: tuple[Accounted, str], data_dir: Path) -> None:
    server, _ = admin
    await server.add_user("root", "owner")
    root = await server.session_for("root")
    await server.ok("AdminAddUser", {"name": "bob", "password": PASSWORD, "role": "user"}, session=root)
    await server.ok("AdminSetUserPassword", {"name": "bob", "password": "new password!"}, session=root)
    await server.ok("CreateAPIKey", {"name": "bot"}, session=root)
    log = await entries(server, root)
    assert [e["route"] for e in log[:4]] == ["CreateAPIKey", "AdminSetUserPassword", "AdminAddUser", "Login"]
    assert log[2]["changes"] == {"name": "bob", "password": REDACTED, "role": "user"}
    assert log[1]["changes"] == {"name": "bob", "password": REDACTED}
    with sqlite3.connect(data_dir / "swarmkeeper.db") as db:
        stored = json.dumps(db.execute("SELECT * FROM audit_log").fetchall())
    assert PASSWORD not in stored and "new password!" not in stored


async def test_reading_the_log_needs_view_audit_log(admin: tuple[Accounted, str]) -> None:
    server, _ = admin
    await server.add_user("pat", "poweruser")
    denied = await server.call("ListAuditLog", session=await server.session_for("pat"))
    assert (denied.status_code, denied.json()["error_id"]) == (400, "bad_permissions")


async def test_account_less_calls_are_recorded_as_the_local_owner(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as client:
        await client.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        log = (await client.ok("ListAuditLog"))["entries"]
    assert [(e["user"], e["route"], e["backend_id"]) for e in log] == [("local", "AddNewBackend", "0")]


def test_redaction_rules() -> None:
    params = {"password": "p", "oldPassword": "o", "token": "", "key": "k", "name": "n" * 600,
              "settings": {"Token": "t", "Address": "a", "ApiSecret": "s", "Empty": ""},
              "nested": {"authorization": "Bearer x", "ok": [1, {"pw": "y"}]}}
    clean = redact(params, {"Empty"})
    assert clean["password"] == clean["oldPassword"] == clean["key"] == REDACTED and clean["token"] == ""
    assert clean["name"] == "n" * 500 + "..."
    assert clean["settings"] == {"Token": SECRET_PLACEHOLDER, "Address": "a", "ApiSecret": SECRET_PLACEHOLDER,
                                 "Empty": ""}
    assert clean["nested"] == {"authorization": REDACTED, "ok": [1, {"pw": REDACTED}]}


def test_the_audit_command(tmp_path: Path) -> None:
    data = tmp_path / "Data"

    def run(*argv: str, stdin: str = "") -> str:
        out = io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(stdin))
            patch.setattr("sys.stdout", out)
            with pytest.raises(SystemExit) as done:
                cli.main([*argv, "--data_dir", str(data)])
        assert done.value.code == 0
        return out.getvalue()

    run("users", "add", "alice", "--role", "admin", "--password_stdin", stdin=PASSWORD + "\n")
    run("users", "set-role", "alice", "user")
    lines = run("audit").splitlines()
    assert len(lines) == 2 and "users set-role" in lines[0] and "users add" in lines[1]
    assert "(command line)" in lines[0] and '"role": "user"' in lines[0]
    as_json = [json.loads(line) for line in run("audit", "--json", "--user", "(command line)", "--limit", "1")
               .splitlines()]
    assert [(e["route"], e["changes"]) for e in as_json] == [("users set-role", {"name": "alice", "role": "user"})]
    assert PASSWORD not in run("audit")
