"""The SQLite database in the data folder: one connection, so one writer.

aiosqlite runs every statement on the connection's own thread, in order, so writes never race.
The schema grows by appending to MIGRATIONS (never edit one that has shipped); ``PRAGMA
user_version`` records how many have run. Migrations may call ``sha256_hex(text)``.

The file (and SQLite's ``-wal`` and ``-shm`` beside it, which take its mode) is created 0600. A file
that SQLite cannot open or migrate raises DataFileError, naming it, before anything else starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from swarmkeeper.exceptions import DataFileError

MIGRATIONS: list[str] = [
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        last_used REAL NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_id);
    """,
    # accounts: users, login tokens, API keys (and the sessions minted with one), the audit log
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE login_tokens (
        id TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        validation_hash TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        address TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX login_tokens_user ON login_tokens (user_name);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT '',
        secret_hash TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL,
        revoked REAL,
        last_used REAL
    );
    CREATE INDEX api_keys_user ON api_keys (user_name);
    CREATE TABLE api_key_sessions (
        session_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        user_id TEXT NOT NULL,
        route TEXT NOT NULL,
        backend_id TEXT,
        new_backend_id TEXT,
        address TEXT NOT NULL DEFAULT '',
        changes TEXT NOT NULL DEFAULT '{}',
        outcome TEXT NOT NULL
    );
    CREATE INDEX audit_log_backend ON audit_log (backend_id);
    CREATE INDEX audit_log_user ON audit_log (user_id);
    """,
    # custom roles (and edited built-in ones), with SwarmUI's fields; who set a user's password
    """
    CREATE TABLE roles (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        permissions TEXT NOT NULL DEFAULT '[]',
        max_outpath_depth INTEGER NOT NULL DEFAULT 5,
        max_t2i_simultaneous INTEGER NOT NULL DEFAULT 32,
        allow_unsafe_outpaths INTEGER NOT NULL DEFAULT 0,
        model_whitelist TEXT NOT NULL DEFAULT '[]',
        model_blacklist TEXT NOT NULL DEFAULT '[]'
    );
    ALTER TABLE users ADD COLUMN password_set_by_admin INTEGER NOT NULL DEFAULT 0;
    """,
    # sessions are kept by the SHA-256 of their id, so the file never holds a usable session id
    """
    UPDATE sessions SET id = sha256_hex(id);
    UPDATE api_key_sessions SET session_id = sha256_hex(session_id);
    """,
]


def sha256_hex(text: str) -> str:
    """The hex SHA-256 of ``text`` (UTF-8): how session ids are stored and looked up."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Database:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection
        #: Writes take turns, so one caller's commit never commits another's half-done transaction.
        self._writing = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Open (or create, mode 0600) and migrate; DataFileError if the file is not a usable database."""
        _create_private(Path(path))
        try:
            connection = await aiosqlite.connect(path)
        except sqlite3.Error as error:
            raise DataFileError(path, f"cannot be opened as a database ({error})") from error
        try:
            return await cls._prepared(connection)
        except sqlite3.Error as error:
            await connection.close()
            raise DataFileError(path, f"is not a usable swarmkeeper database ({error}); restore it from a backup "
                                      "or move it aside to start with a new one") from error

    @classmethod
    async def _prepared(cls, connection: aiosqlite.Connection) -> Database:
        connection.row_factory = aiosqlite.Row
        await connection.create_function("sha256_hex", 1, sha256_hex, deterministic=True)
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        database = cls(connection)
        await database._migrate()
        return database

    async def _migrate(self) -> None:
        async with self.connection.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = row[0] if row else 0
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self.connection.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement and commit; returns the number of rows changed."""
        async with self._writing:
            cursor = await self.connection.execute(sql, params)
            await self.connection.commit()
            return cursor.rowcount

    async def execute_many(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Several statements in one transaction: all or nothing."""
        async with self._writing:
            try:
                for sql, params in statements:
                    await self.connection.execute(sql, params)
                await self.connection.commit()
            except BaseException:
                await self.connection.rollback()
                raise

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.connection.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.connection.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def close(self) -> None:
        await self.connection.close()


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only (SQLite would use the umask)."""
    if str(path) == ":memory:" or os.path.lexists(path):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as error:
        raise DataFileError(path, f"cannot be created ({error.strerror or error})") from error
