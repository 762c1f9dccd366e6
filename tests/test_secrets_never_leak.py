"""Secrets (passwords and what stands for them, API keys, login tokens, backend secret settings, the
RequiredAuthorization pass phrase) never appear in anything the server writes: responses (bodies
and headers), its log at the most verbose level, the audit log, error messages, its database, and
the CLI's output. A real server process is driven through a session of ordinary and wrong calls,
then everything it wrote is searched.

The only places a secret may appear are where it is handed to its owner: the ``Set-Cookie`` of a
successful Login (the token), the answer of CreateAPIKey and the stdout of ``keys create`` (the
new key). Backends.fds and Settings.fds hold their secrets in plain text by design (SwarmUI's file
formats), so they are not searched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper.accounts.apikeys import parse_key
from swarmkeeper.accounts.passwords import client_prehash
from swarmkeeper.accounts.tokens import COOKIE, parse_token
from swarmkeeper.backends.settings import Setting, SettingKind
from swarmkeeper.exceptions import SettingsError
from tests.accounts_support import write_settings
from tests.servers import ROOT, ServerProcess

ROOT_PW = "Tr0ub4dor&3-root-pw"
BOB_PW = "Zebra!Kite#77-bob-pw"
BOB_NEW_PW = "Quartz*Lamp^19-new-pw"
GATE = "Bearer gate-9d81c7e2f0aa"
TOKEN = "tok-5e7a2b9c41f8-backend"


class Recorder:
    """Every response the server sent, as text (headers and body)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.seen: list[str] = []
        self.secrets: list[str] = [ROOT_PW, BOB_PW, BOB_NEW_PW, GATE, TOKEN]
        for name, password in (("root", ROOT_PW), ("bob", BOB_PW), ("bob", BOB_NEW_PW)):
            self.secrets.append(client_prehash(name, password))

    def key_secrets(self, key: str) -> None:
        parsed = parse_key(key)
        assert parsed is not None
        self.secrets += [key, parsed.secret]

    async def post(self, route: str, body: dict[str, Any] | None = None, *, allowed: str = "",
                   **options: Any) -> httpx.Response:
        """Send and record; ``allowed`` names the one part of this answer that may hold a secret
        (``cookie`` or ``body``)."""
        response = await self.http.post(f"/API/{route}", json=body or {}, **options)
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items()
                            if not (allowed == "cookie" and name == "set-cookie"))
        self.seen.append(headers + "\n" + ("" if allowed == "body" else response.text))
        self.http.cookies.clear()
        return response


def cli(data_dir: Path, *argv: str, stdin: str = "") -> tuple[str, str]:
    """Run ``swarmkeeper <argv>``; its (stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "swarmkeeper", *argv, "--data_dir", str(data_dir)], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    return done.stdout, done.stderr


async def drive(server: Recorder) -> None:
    """Ordinary and wrong calls: logins, users, keys, a backend secret, the gate."""
    gate = {"Authorization": GATE}
    await server.post("Login", {"username": "root", "password": "not it"}, headers=gate)
    login = await server.post("Login", {"username": "root", "password": ROOT_PW}, headers=gate, allowed="cookie")
    token = login.cookies[COOKIE]
    server.secrets += [token, token.split(".")[2]]
    assert parse_token(token) is not None
    cookie = {**gate, "Cookie": f"{COOKIE}={token}"}
    session = (await server.post("GetNewSession", headers=cookie)).json()["session_id"]
    root = {"session_id": session}
    await server.post("AdminAddUser", {**root, "name": "bob", "password": BOB_PW, "role": "admin"}, headers=gate)
    await server.post("AdminSetUserPassword", {**root, "name": "bob", "password": BOB_NEW_PW}, headers=gate)
    await server.post("Login", {"username": "bob", "password": BOB_PW}, headers=gate)
    await server.post("ChangePassword", {**root, "oldPassword": BOB_PW, "newPassword": BOB_NEW_PW}, headers=gate)
    created = await server.post("CreateAPIKey", {**root, "name": "bot"}, headers=gate, allowed="body")
    key = created.json()["key"]
    server.key_secrets(key)
    bearer = {"Authorization": f"Bearer {key}"}
    backend = (await server.post("AddNewBackend", {"type_id": "swarmkeeper_dummy"}, headers=bearer)).json()["id"]
    settings = {"Address": "dummy", "Token": TOKEN, "OverQueue": "1"}
    await server.post("EditBackend", {"backend_id": backend, "title": "t", "settings": settings}, headers=bearer)
    await server.post("EditBackend", {"backend_id": backend, "title": "t",
                                      "settings": {**settings, "OverQueue": "12x"}}, headers=bearer)
    await server.post("ListBackends", {"full_data": True}, headers=bearer)
    await server.post("ListBackends", headers={"Authorization": f"Bearer {key[:-2]}zz"})
    await server.post("ListBackends", headers={"Authorization": "Bearer gate-wrong"})
    await server.post("ListBackends")
    await server.post("RevokeAPIKey", {**root, "id": created.json()["id"]}, headers=gate)
    await server.post("ListBackends", headers=bearer)
    await server.post("ListAuditLog", {**root, "limit": 1000}, headers=gate)
    await server.post("ListRecentLogMessages", {**root, "types": ["Server"]}, headers=gate)
    await server.post("Logout", root, headers=cookie)


async def test_no_secret_in_anything_the_server_wrote(tmp_path: Path) -> None:
    data_dir = tmp_path / "Data"
    write_settings(data_dir, network={"RequiredAuthorization": GATE, "AuthBypassIPs": ""},
                   userauthorization={"AllowLocalhostBypass": False})
    written = [*cli(data_dir, "users", "add", "root", "--role", "owner", "--password_stdin", stdin=ROOT_PW + "\n")]
    cli_key, note = cli(data_dir, "keys", "create", "--user", "root", "--name", "ops")  # stdout: the key, once
    written.append(note)
    process = ServerProcess(data_dir, "--require_accounts", "--loglevel", "Debug")
    process.start(headers={"Authorization": GATE})
    try:
        async with process.client() as http:
            server = Recorder(http)
            server.key_secrets(cli_key.strip())
            await drive(server)
            await server.post("ListBackends", headers={"Authorization": f"Bearer {cli_key.strip()}"})
    finally:
        process.stop()
    for argv in (("audit", "--limit", "1000"), ("keys", "list"), ("users", "list")):
        written += cli(data_dir, *argv)
    written += [process.output(), *server.seen]
    database = b"".join(path.read_bytes() for path in data_dir.glob("swarmkeeper.db*"))
    text = "\n".join(written)
    for happened in ("EditBackend", "Invalid value '12x' for setting 'OverQueue'", "Unauthorized", "invalid_login",
                     "The current password is not right.", "Logout"):
        assert happened in text, happened
    leaks = [secret for secret in server.secrets if secret in text or secret.encode() in database]
    assert leaks == []


@pytest.mark.parametrize("kind", [SettingKind.INTEGER, SettingKind.DECIMAL, SettingKind.BOOLEAN,
                                  SettingKind.DROPDOWN])
def test_a_refused_secret_setting_is_not_quoted(kind: SettingKind) -> None:
    options = (("a", "A"),) if kind is SettingKind.DROPDOWN else None
    setting = Setting("Pin", kind, "a" if options else 0, secret=True, options=options)
    with pytest.raises(SettingsError) as refused:
        setting.coerce("hunter2-secret")
    assert "hunter2" not in refused.value.message and "'<secret>'" in refused.value.message
