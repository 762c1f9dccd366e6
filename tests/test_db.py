"""The database: migrations, and transactions that never commit each other's halves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from swarmkeeper.db import MIGRATIONS, Database


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
