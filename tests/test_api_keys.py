"""API keys: shown once, stored hashed, listed by name and prefix, revocable, narrowed to a role,
standing in for a session; the constant-time check; the ``swarmkeeper keys`` commands."""

from __future__ import annotations

import hashlib
import hmac
import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from swarmkeeper import cli
from swarmkeeper.accounts import apikeys
from swarmkeeper.accounts.apikeys import KeyStatus, parse_key
from swarmkeeper.api.permissions import role_permissions
from tests.accounts_support import PASSWORD, Accounted


@pytest.fixture
async def alice(app_client_with_accounts: Accounted) -> tuple[Accounted, str]:
    """A server with alice (admin) logged in: (server, her session)."""
    await app_client_with_accounts.add_user("alice", "admin")
    return app_client_with_accounts, await app_client_with_accounts.session_for("alice")


async def test_a_key_is_shown_once_and_stored_hashed(alice: tuple[Accounted, str], data_dir: Path) -> None:
    server, session = alice
    created = await server.ok("CreateAPIKey", {"name": "nightly-bot", "expires_days": 30}, session=session)
    key = created["key"]
    parsed = parse_key(key)
    assert parsed is not None and created["prefix"] == f"swk_{parsed.id}" and key.startswith(created["prefix"] + "_")
    assert (created["name"], created["user"], created["role"], created["revoked"]) == ("nightly-bot", "alice", "",
                                                                                       None)
    assert created["expires"] == pytest.approx(created["created"] + 30 * 86400)
    listed = (await server.ok("ListAPIKeys", session=session))["keys"]
    assert listed == [{name: value for name, value in created.items() if name != "key"}]
    database = (data_dir / "swarmkeeper.db").read_bytes() + _wal(data_dir)
    assert parsed.secret.encode() not in database and key.encode() not in database
    assert hashlib.sha256(parsed.secret.encode()).hexdigest().encode() in database


def _wal(data_dir: Path) -> bytes:
    wal = data_dir / "swarmkeeper.db-wal"
    return wal.read_bytes() if wal.exists() else b""


async def test_a_key_stands_in_for_a_session(alice: tuple[Accounted, str]) -> None:
    server, session = alice
    key = (await server.ok("CreateAPIKey", {"name": "script"}, session=session))["key"]
    assert (await server.call("ListBackends", key=key)).json() == {}
    added = await server.ok("AddNewBackend", {"type_id": "swarmkeeper_dummy"}, key=key)
    assert added["id"] == 0
    with_session = await server.call("ListBackends", session=session, key=key)  # both: the key decides
    assert "0" in with_session.json()
    last_used = (await server.ok("ListAPIKeys", session=session))["keys"][0]["last_used"]
    assert last_used is not None and last_used <= time.time()


async def test_a_narrowed_key_and_its_sessions_hold_only_its_role(alice: tuple[Accounted, str]) -> None:
    server, session = alice
    key = (await server.ok("CreateAPIKey", {"name": "viewer", "role": "poweruser"}, session=session))["key"]
    assert (await server.call("ListBackends", key=key)).json() == {}
    denied = await server.call("AddNewBackend", {"type_id": "swarmkeeper_dummy"}, key=key)
    assert (denied.status_code, denied.json()["error_id"]) == (400, "bad_permissions")
    opened = (await server.new_session(key=key)).json()
    assert opened["user_id"] == "alice" and opened["permissions"] == sorted(role_permissions("poweruser"))
    bound = opened["session_id"]
    assert (await server.call("AddNewBackend", {"type_id": "swarmkeeper_dummy"}, session=bound)).status_code == 400
    key_id = parse_key(key).id  # type: ignore[union-attr]
    assert (await server.ok("RevokeAPIKey", {"id": key_id}, session=session)) == {"success": True,
                                                                                   "result": "Revoked."}
    assert (await server.call("ListBackends", session=bound)).status_code == 401  # died with the key
    refused = await server.call("ListBackends", key=key)
    assert (refused.status_code, refused.json()) == (401, {"error_id": "invalid_api_key",
                                                           "error": "This API key has been revoked."})
    again = await server.ok("RevokeAPIKey", {"id": f"swk_{key_id}"}, session=session)
    assert again["result"] == "Already revoked."


async def test_a_key_never_holds_more_than_its_user(alice: tuple[Accounted, str]) -> None:
    server, session = alice
    message = await server.error("CreateAPIKey", {"name": "escalate", "role": "owner"}, session=session)
    assert message == "A key cannot hold more than its user: role 'owner' has permissions 'alice' lacks."
    await server.ok("CreateAPIKey", {"name": "same", "role": "admin"}, session=session)


async def test_a_key_cannot_mint_or_revoke_keys(alice: tuple[Accounted, str]) -> None:
    server, session = alice
    key = (await server.ok("CreateAPIKey", {"name": "bot"}, session=session))["key"]
    assert await server.error("CreateAPIKey", {"name": "child"}, key=key) == "This needs a login, not an API key."
    assert await server.error("RevokeAPIKey", {"id": parse_key(key).id}, key=key) == (  # type: ignore[union-attr]
        "This needs a login, not an API key.")
    assert [k["name"] for k in (await server.ok("ListAPIKeys", key=key))["keys"]] == ["bot"]


async def test_a_key_with_someone_elses_session_is_refused(alice: tuple[Accounted, str]) -> None:
    server, session = alice
    await server.add_user("bob", "admin")
    bob_key = await server.key_for("bob")
    assert (await server.call("ListBackends", session=session, key=bob_key)).status_code == 401


async def test_keys_are_private_to_their_user_unless_you_manage_users(alice: tuple[Accounted, str]) -> None:
    server, session = alice
    await server.add_user("root", "owner")
    root = await server.session_for("root")
    alices = (await server.ok("CreateAPIKey", {"name": "mine"}, session=session))["id"]
    assert await server.error("ListAPIKeys", {"user": "root"}, session=session) == (
        "Only user managers (manage_users) can list other users' keys.")
    everyone = (await server.ok("ListAPIKeys", {"user": "*"}, session=root))["keys"]
    assert [k["user"] for k in everyone] == ["alice"]
    await server.add_user("carol", "user")
    carol = await server.session_for("carol")
    assert await server.error("RevokeAPIKey", {"id": alices}, session=carol) == "No such API key."
    assert (await server.ok("RevokeAPIKey", {"id": alices}, session=root))["result"] == "Revoked."


async def test_expired_and_malformed_keys(alice: tuple[Accounted, str]) -> None:
    server, _ = alice
    _, expired = await server.accounts.keys.create("alice", "old", "", time.time() - 1)
    assert (await server.call("ListBackends", key=expired)).json()["error"] == "This API key has expired."
    real = await server.key_for("alice")
    parsed = parse_key(real)
    assert parsed is not None
    # an upper-case id starts with "A": a random hex id may have no letter to upper-case
    for bad in ("swk_", "swk_123", f"swk_{parsed.id}_short", f"swk_A{parsed.id[1:]}_{parsed.secret}",
                f"swk_{parsed.id}_{parsed.secret}!", f"{real} extra", f"swk_{parsed.id}_{parsed.secret}\x7f"):
        answer = await server.call("ListBackends", key=bad)
        assert answer.status_code == 401 and answer.json()["error"].startswith("Malformed API key"), bad
    accented = await server.http.post("/API/ListBackends", json={},
                                      headers={"Authorization": ("Bearer swk_" + "\u00e9" * 50).encode()})
    assert accented.status_code == 401 and accented.json()["error"].startswith("Malformed API key")
    wrong = f"swk_{parsed.id}_{'A' * len(parsed.secret)}"
    assert (await server.call("ListBackends", key=wrong)).json()["error"] == "Invalid API key."
    not_ours = await server.call("ListBackends", headers={"Authorization": "Bearer something-else"})
    assert not_ours.json() == {"error_id": "basic_api", "error": "missing session id"}


async def test_every_check_compares_once_in_constant_time(alice: tuple[Accounted, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A right key, a wrong secret and an unknown id all do the same work: one hash, and one
    hmac.compare_digest of two equal-length digests (no early exit that timing could reveal).
    The timing itself is measured by bench/api_key_compare.py."""
    server, _ = alice
    real = await server.key_for("alice")
    parsed = parse_key(real)
    assert parsed is not None
    compared: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    cases = {real: KeyStatus.VALID, f"swk_{parsed.id}_{'B' * len(parsed.secret)}": KeyStatus.UNKNOWN,
             f"swk_000000000000_{parsed.secret}": KeyStatus.UNKNOWN}
    for text, status in cases.items():
        compared.clear()
        assert (await server.accounts.keys.check(text)).status is status
        assert compared == [(64, 64)]


def run_cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        try:
            cli.main(list(argv))
        except SystemExit as done:
            return int(done.code or 0), out.getvalue(), err.getvalue()
    raise AssertionError("the CLI did not exit")


def test_the_keys_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "Data")
    assert run_cli("users", "add", "alice", "--role", "admin", "--password_stdin", "--data_dir", data,
                   stdin=PASSWORD + "\n")[0] == 0
    code, out, err = run_cli("keys", "create", "--user", "alice", "--name", "ci", "--role", "user",
                             "--expires_days", "7", "--data_dir", data)
    key = out.strip()
    parsed = parse_key(key)
    assert code == 0 and parsed is not None and "shown only this once" in err
    code, out, _ = run_cli("keys", "list", "--data_dir", data)
    assert code == 0 and f"swk_{parsed.id}" in out and "ci" in out and key not in out and parsed.secret not in out
    assert run_cli("keys", "revoke", f"swk_{parsed.id}", "--data_dir", data)[:2] == (0, f"Revoked swk_{parsed.id}.\n")
    assert "revoked" in run_cli("keys", "list", "--user", "alice", "--data_dir", data)[1]
    assert run_cli("keys", "revoke", "nope", "--data_dir", data)[::2] == (1, "swarmkeeper: No such API key.\n")
    too_much = run_cli("keys", "create", "--user", "alice", "--name", "x", "--role", "owner", "--data_dir", data)
    assert too_much[0] == 1 and "cannot hold more than its user" in too_much[2]
    missing = run_cli("keys", "create", "--user", "ghost", "--name", "x", "--data_dir", data)
    assert missing[::2] == (1, "swarmkeeper: No such user.\n")
    with sqlite3.connect(tmp_path / "Data" / "swarmkeeper.db") as db:
        rows = db.execute("SELECT user_name, name, role, revoked IS NOT NULL FROM api_keys").fetchall()
    assert rows == [("alice", "ci", "user", 1)]
