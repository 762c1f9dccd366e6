"""The records of running processes on disk (process/records.py): what is put is there for the
next server, removals too, one write serves a burst of changes, and a damaged file or entry never
stops a server (nothing is adopted from it)."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from swarmkeeper.process import records as records_module
from swarmkeeper.process.adopted import Identity
from swarmkeeper.process.records import ProcessRecord, ProcessRecords


def record(key: str, pid: int = 4242, port: int = 7821) -> ProcessRecord:
    return ProcessRecord(key=key, fingerprint="f" * 32, pid=pid, started=1718000000.25, ticks=81234567,
                         cmdline=("python3", "-s", "main.py", "--port", str(port)), port=port, ready=True,
                         output_dir="Data/ComfyUI/backend-" + key)


async def test_records_put_and_removed_are_on_disk_for_the_next_server(tmp_path: Path) -> None:
    path = tmp_path / "backends-running.json"
    first = ProcessRecords(path)
    first.put(record("0"))
    first.put(record("1", pid=4343, port=7822))
    first.remove("0")
    await first.flush()
    again = ProcessRecords(path)
    assert again.all() == [record("1", pid=4343, port=7822)]
    assert again.get("1").identity == Identity(1718000000.25, 81234567, ("python3", "-s", "main.py", "--port", "7822"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["processes"]["1"]["cmdline"][-1] == "7822"


async def test_a_burst_of_changes_shares_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    monkeypatch.setattr(records_module, "write_atomic", lambda path, text: writes.append(text))
    records = ProcessRecords(tmp_path / "r.json")
    for n in range(50):
        records.put(record(str(n), pid=5000 + n))
    await records.flush()
    assert len(writes) < 50 and json.loads(writes[-1])["processes"].keys() == {str(n) for n in range(50)}
    await records.flush()  # nothing changed since: no write
    assert json.loads(writes[-1]) == json.loads(records.render())


def test_a_damaged_file_or_entry_is_reported_and_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert ProcessRecords(path).all() == []
    assert "cannot be read" in caplog.text and "no process will be adopted" in caplog.text
    good = record("2").to_json()
    path.write_text(json.dumps({"version": 1, "processes": {"1": {"pid": "x"}, "2": good, "3": [1]}}))
    assert [r.key for r in ProcessRecords(path).all()] == ["2"]
