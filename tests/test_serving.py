"""`swarmkeeper serve` as a real child process, attacked at start-up: a settings typo, a second
server on the same folder, a corrupt database, invalid UTF-8, a directory where a file should be
(docs/security.md, sections 2, 6 and 9). Each failed start exits 1 at once with one line naming
what to fix, no traceback, and the file left exactly as it was."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.servers import ServerProcess

#: A settings file with accounts required and the network gate set: what a typo must never turn off.
GUARDED = (
    "Network:\n"
    "\tRequiredAuthorization: team-secret\n"
    "\tAuthBypassIPs: \\x\n"
    "UserAuthorization:\n"
    "\tAuthorizationRequired: true\n"
    "\tAllowLocalhostBypass: false\n"
)


def start_error(server: ServerProcess) -> str:
    """The single error line of a refused start; asserts there is exactly one and no traceback."""
    output = server.output()
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "[Error]" in line]
    assert len(errors) == 1, output
    assert "swarmkeeper cannot start: " in errors[0], output
    return errors[0]


@pytest.mark.parametrize(("typo", "line", "reason"), [
    ("\tRequiredAuthorization team-secret\n", 2, "expected 'key: value'"),
    ("\tRequiredAuthorization: team-secret\n  AuthBypassIPs: \\x\n", 3, "indented 2 spaces where 0 were expected"),
    ("\tRequiredAuthorization: team-secret\n\t\tAuthBypassIPs: \\x\n", 3, "indented 8 spaces where 4 were expected"),
], ids=["no-colon", "indent-out", "indent-in"])
def test_a_settings_typo_stops_the_server_naming_the_file_and_line(data_dir: Path, typo: str, line: int,
                                                                   reason: str) -> None:
    data_dir.mkdir()
    settings = data_dir / "Settings.fds"
    text = GUARDED.replace("\tRequiredAuthorization: team-secret\n", typo).encode()
    settings.write_bytes(text)
    server = ServerProcess(data_dir)
    assert server.refused() == 1
    error = start_error(server)
    assert f"{settings}, line {line}: {reason}" in error
    assert "team-secret" not in server.output()
    assert settings.read_bytes() == text
    assert not (data_dir / "swarmkeeper.db").exists()


@pytest.mark.parametrize(("setting", "shown"), [
    ("\tAuthorizationRequired: yes\n", "line 5: UserAuthorization.AuthorizationRequired: Invalid value 'yes'"),
    ("\tAuthorizationRequired:\n\t\tvalue: true\n", "line 5: setting UserAuthorization.AuthorizationRequired must "
                                                     "be a single value"),
])
def test_a_security_setting_of_the_wrong_type_is_an_error_not_a_default(data_dir: Path, setting: str,
                                                                         shown: str) -> None:
    data_dir.mkdir()
    settings = data_dir / "Settings.fds"
    text = GUARDED.replace("\tAuthorizationRequired: true\n", setting).encode()
    settings.write_bytes(text)
    server = ServerProcess(data_dir)
    assert server.refused() == 1
    assert f"{settings}, {shown}" in start_error(server)
    assert settings.read_bytes() == text


def test_a_guarded_settings_file_that_parses_is_enforced(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "Settings.fds").write_text(GUARDED.replace("\tAuthorizationRequired: true\n", ""))
    server = ServerProcess(data_dir).start(headers={"Authorization": "team-secret"})
    try:
        assert httpx.post(f"{server.url}/API/GetNewSession", json={}).status_code == 401
    finally:
        server.stop()


def test_a_second_server_on_the_same_folder_refuses_naming_the_first_pid(data_dir: Path) -> None:
    first = ServerProcess(data_dir).start()
    second = ServerProcess(data_dir)
    try:
        assert first.process is not None
        assert second.refused() == 1
        error = start_error(second)
        assert f"The data folder {data_dir} is in use by another swarmkeeper server (pid {first.process.pid})" in error
        first.kill()  # kill -9: no shutdown code runs, the kernel drops the lock
        second.start()
        assert httpx.post(f"{second.url}/API/GetNewSession", json={}).status_code == 200
    finally:
        second.stop()
        first.stop()


def corrupt_database(data_dir: Path) -> Path:
    path = data_dir / "swarmkeeper.db"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4080))
    return path


def invalid_utf8(path: Path) -> Path:
    path.write_bytes(b"0:\n\ttype: swarmkeeper_dummy\n\ttitle: caf\xe9\n")
    return path


def directory(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(("make", "reason"), [
    (corrupt_database, "swarmkeeper.db: is not a usable swarmkeeper database"),
    (lambda data_dir: invalid_utf8(data_dir / "Backends.fds"), "Backends.fds, line 3: is not valid UTF-8 text"),
    (lambda data_dir: invalid_utf8(data_dir / "Settings.fds"), "Settings.fds, line 3: is not valid UTF-8 text"),
    (lambda data_dir: directory(data_dir / "Backends.fds"), "Backends.fds: is a directory, not a file"),
    (lambda data_dir: directory(data_dir / "Settings.fds"), "Settings.fds: is a directory, not a file"),
], ids=["corrupt-db", "utf8-backends", "utf8-settings", "backends-dir", "settings-dir"])
def test_a_start_that_fails_exits_at_once_with_one_line(data_dir: Path, make: Callable[[Path], Path],
                                                       reason: str) -> None:
    data_dir.mkdir()
    path = make(data_dir)
    before = path.read_bytes() if path.is_file() else None
    server = ServerProcess(data_dir)
    assert server.refused(timeout=30) == 1  # never a hang: TimeoutExpired fails the test
    assert f"{data_dir}/{reason}" in start_error(server)
    if before is None:
        assert path.is_dir() and list(path.iterdir()) == []
    else:
        assert path.read_bytes() == before
    assert [p.name for p in data_dir.iterdir() if ".unreadable-" in p.name or p.name.endswith("~2")] == []


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_the_data_folder_and_every_file_in_it_are_the_owners_only(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    (data_dir / "Settings.fds").write_text("Backends:\n\tMaxBackendInitAttempts: 2\n")
    os.chmod(data_dir / "Settings.fds", 0o644)
    server = ServerProcess(data_dir).start()
    try:
        async with server.client() as http:
            token = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
            added = await http.post("/API/AddNewBackend", json={"session_id": token, "type_id": "swarmkeeper_dummy"})
            assert added.status_code == 200 and "error" not in added.json(), added.text
        folder_files = [data_dir / name for name in ("swarmkeeper.db", "swarmkeeper.db-wal", "swarmkeeper.db-shm",
                                                     "Backends.fds", "Settings.fds", "swarmkeeper.lock")]
        log_files = list((data_dir / "logs").iterdir())
        assert log_files, "no log file was written"
        assert {path.name: mode(path) for path in [*folder_files, *log_files]} == {
            path.name: 0o600 for path in [*folder_files, *log_files]}
        assert (mode(data_dir), mode(data_dir / "logs")) == (0o700, 0o700)
    finally:
        server.stop()
    tightened = [line for line in server.output().splitlines() if "Tightened" in line]
    assert len(tightened) == 2 and "from 755 to 700" in tightened[0] and "from 644 to 600" in tightened[1], tightened


def database_bytes(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in data_dir.glob("swarmkeeper.db*"))


async def test_session_ids_are_stored_hashed_and_survive_a_restart(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    try:
        async with server.client() as http:
            token = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
            assert (await http.post("/API/ListBackends", json={"session_id": token})).status_code == 200
        with contextlib.closing(sqlite3.connect(data_dir / "swarmkeeper.db")) as db:
            stored = {row[0] for row in db.execute("SELECT id FROM sessions")}
        key = hashlib.sha256(token.encode()).hexdigest()
        assert key in stored and token not in stored
        assert token.encode() not in database_bytes(data_dir)
    finally:
        server.stop()
    again = ServerProcess(data_dir).start()
    try:
        async with again.client() as http:
            answer = await http.post("/API/ListBackends", json={"session_id": token})
            assert answer.status_code == 200 and answer.json() == {}
            hashed = await http.post("/API/ListBackends", json={"session_id": key})
            assert hashed.status_code == 401  # what the file holds is no credential
    finally:
        again.stop()
