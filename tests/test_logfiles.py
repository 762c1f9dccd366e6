"""serve --log_format json, and the rotated log files under <data_dir>/logs/."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmkeeper.logfiles import BackendFiles, RotationPolicy, setup_log_files
from swarmkeeper.logformat import JSONFormatter, backend_of, formatter_for
from swarmkeeper.logs import SwarmFormatter
from tests.servers import APIClient, ServerProcess


def record(name: str, message: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    return logging.makeLogRecord({"name": name, "msg": message, "levelno": level,
                                  "levelname": logging.getLevelName(level), **extra})


def test_json_lines_carry_time_level_logger_message_and_backend() -> None:
    line = json.loads(JSONFormatter().format(record("swarmkeeper.backend.3", "started\non two lines")))
    assert list(line) == ["time", "level", "logger", "message", "backend"]
    assert (line["level"], line["logger"], line["message"], line["backend"]) == (
        "Info", "swarmkeeper.backend.3", "started\non two lines", 3)
    assert line["time"][:2] == "20" and "T" in line["time"]
    plain = json.loads(JSONFormatter().format(record("swarmkeeper.api", "hello", logging.WARNING)))
    assert "backend" not in plain and plain["level"] == "Warning"


def test_backend_ids_from_the_logger_or_an_explicit_extra() -> None:
    assert backend_of(record("swarmkeeper.backend.-2.process", "x")) == -2
    assert backend_of(record("swarmkeeper.lifecycle", "x", backend_id=7)) == 7
    assert backend_of(record("swarmkeeper.backend.notanid", "x")) is None
    assert backend_of(record("swarmkeeper.lifecycle", "x", backend_id=True)) is None


def test_exceptions_are_kept_in_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        text = JSONFormatter().format(record("swarmkeeper", "failed", logging.ERROR, exc_info=sys.exc_info()))
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exception"]


def test_formats_by_name() -> None:
    assert isinstance(formatter_for("json"), JSONFormatter)
    assert isinstance(formatter_for("text"), SwarmFormatter)
    with pytest.raises(ValueError):
        formatter_for("xml")


@pytest.fixture
def backend_files(tmp_path: Path) -> Iterator[BackendFiles]:
    handler = BackendFiles(tmp_path, RotationPolicy(max_bytes=400, backups=2, open_files=2), SwarmFormatter())
    yield handler
    handler.close()


def test_each_backend_gets_its_own_rotated_file(backend_files: BackendFiles, tmp_path: Path) -> None:
    for number in range(40):
        backend_files.handle(record("swarmkeeper.backend.3", f"line {number:02d} " + "x" * 30, logging.DEBUG))
    backend_files.handle(record("swarmkeeper.api", "not about a backend"))
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["backend-3.log", "backend-3.log.1", "backend-3.log.2"]
    assert all(path.stat().st_size <= 400 for path in tmp_path.iterdir())
    assert "line 39" in (tmp_path / "backend-3.log").read_text()
    assert "line 00" not in "".join(path.read_text() for path in tmp_path.iterdir())  # the oldest rotated away
    assert {path.stat().st_mode & 0o777 for path in tmp_path.iterdir()} == {0o600}  # rotated ones too


def test_only_so_many_backend_files_stay_open(backend_files: BackendFiles, tmp_path: Path) -> None:
    for backend_id in (1, 2, 3, 1):
        backend_files.handle(record(f"swarmkeeper.backend.{backend_id}", f"hello {backend_id}"))
    assert backend_files.open_count == 2
    assert (tmp_path / "backend-1.log").read_text().count("hello 1") == 2  # reopened and appended
    assert "hello 2" in (tmp_path / "backend-2.log").read_text()


def test_no_files_when_turned_off_or_the_folder_cannot_be_made(tmp_path: Path) -> None:
    assert setup_log_files(tmp_path / "off", logging.INFO, SwarmFormatter(), RotationPolicy(max_bytes=0)) == []
    assert not (tmp_path / "off").exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert setup_log_files(blocker, logging.INFO, SwarmFormatter()) == []


@pytest.fixture
def json_server(data_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, "--log_format", "json", "--log_max_mb", "0.002", "--log_backups", "2",
                           "--loglevel", "Debug").start()
    yield server
    server.stop()


async def test_a_real_server_writes_json_console_and_rotated_files(json_server: ServerProcess) -> None:
    async with json_server.client() as http:
        api = APIClient(http)
        added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        for number in range(3):
            await api.ok("EditBackend", backend_id=added["id"], title=f"t{number}", settings={"Address": "x"})
        await api.wait_status(added["id"], "running")
        for _ in range(30):
            await api.call("NoSuchRoute")  # logged at Debug or above: fills server.log
    folder = json_server.data_dir / "logs"
    console = [json.loads(line) for line in json_server.output().splitlines() if line.strip()]
    assert any(line["message"].startswith("swarmkeeper is ready") for line in console)
    server_logs = sorted(path.name for path in folder.glob("server.log*"))
    assert server_logs[0] == "server.log" and len(server_logs) >= 2 and len(server_logs) <= 3
    lines = [json.loads(line) for path in folder.glob("*.log*") for line in path.read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    backend_lines = [json.loads(line) for line in (folder / f"backend-{added['id']}.log").read_text().splitlines()]
    assert backend_lines and all(line["backend"] == added["id"] for line in backend_lines)


def test_serve_refuses_an_unknown_log_format(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "swarmkeeper", "serve", "--log_format", "xml", "--data_dir",
                             str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "invalid choice: 'xml'" in result.stderr
