"""The database: migrations (session ids hashed on upgrade), transactions that never commit each
other's halves, a file that is not a database, and the file's mode."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from pathlib import Path

import pytest

from swarmkeeper.db import MIGRATIONS, Database, sha256_hex
from swarmkeeper.exceptions import DataFileError
from tests.servers import in_process, test_config


async def test_migrations_run_once_and_record_their_count(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    row = await db.fetch_one("PRAGMA user_version")
    assert row is not None and row[0] == len(MIGRATIONS)
    await db.close()
    again = await Database.open(tmp_path / "a.db")
    row = await again.fetch_one("PRAGMA user_version")
    assert row is not None and row[0] == len(MIGRATIONS)
    await again.close()


async def test_a_failed_transaction_leaves_nothing_even_with_writers_in_between(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "b.db")
    await db.execute("CREATE TABLE t (v TEXT UNIQUE)")

    def statements() -> list[tuple[str, tuple[str]]]:
        return [("INSERT INTO t (v) VALUES (?)", ("first",)), ("INSERT INTO t (v) VALUES (?)", ("first",))]

    failing = asyncio.create_task(db.execute_many(statements()))
    others = [asyncio.create_task(db.execute("INSERT INTO t (v) VALUES (?)", (f"other-{n}",))) for n in range(5)]
    with pytest.raises(Exception, match="UNIQUE"):
        await failing
    await asyncio.gather(*others)
    values = sorted(row[0] for row in await db.fetch_all("SELECT v FROM t"))
    assert values == [f"other-{n}" for n in range(5)]
    await db.close()


def database_before_hashing(path: Path, session_id: str) -> None:
    """A database as swarmkeeper left it before session ids were hashed (migrations 1 and 2), with
    one session of the local owner and its binding to an API key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        for number, script in enumerate(MIGRATIONS[:2], start=1):
            db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        db.execute("INSERT INTO sessions (id, user_id, source, created, last_used) VALUES (?, 'local', '', 1, 1)",
                   (session_id,))
        db.execute("INSERT INTO api_key_sessions (session_id, key_id) VALUES (?, 'k1')", (session_id,))
        db.commit()


async def test_the_upgrade_hashes_stored_session_ids_and_keeps_them_working(tmp_path: Path) -> None:
    data_dir = tmp_path / "Data"
    raw = "ab" * 24
    database_before_hashing(data_dir / "swarmkeeper.db", raw)
    async with in_process(test_config(data_dir)) as api:
        api.session_id = raw
        assert await api.ok("ListBackends") == {}
        db = api.services.db  # type: ignore[union-attr]
        assert [tuple(row) for row in await db.fetch_all("SELECT id FROM sessions")] == [(sha256_hex(raw),)]
        assert [tuple(row) for row in await db.fetch_all("SELECT session_id FROM api_key_sessions")] == [
            (sha256_hex(raw),)]
    assert sha256_hex(raw) == hashlib.sha256(raw.encode()).hexdigest()


async def test_a_file_that_is_not_a_database_is_a_clear_error_and_stays_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "swarmkeeper.db"
    path.write_bytes(b"not a database" * 300)
    with pytest.raises(DataFileError, match=r"swarmkeeper\.db: is not a usable swarmkeeper database"):
        await Database.open(path)
    assert path.read_bytes() == b"not a database" * 300


async def test_a_new_database_is_created_for_its_owner_only(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "c.db")
    await db.execute("CREATE TABLE t (v TEXT)")
    assert {path.name: path.stat().st_mode & 0o777 for path in tmp_path.iterdir()} == {
        "c.db": 0o600, "c.db-wal": 0o600, "c.db-shm": 0o600}
    await db.close()
