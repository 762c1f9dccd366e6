"""`swarmkeeper serve`: SwarmUI's flags, the log format, and locked settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from swarmkeeper.cli import build_parser
from tests.servers import APIClient, ServerProcess


def test_flags_parse_with_swarmui_spellings(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9000", "--data_dir", str(tmp_path),
                                      "--lock_settings", "--loglevel", "Debug", "--backends-file", "b.fds"])
    assert (args.host, args.port, args.data_dir, args.lock_settings, args.loglevel) == (
        "0.0.0.0", 9000, tmp_path, True, "Debug")
    assert args.backends_file == Path("b.fds")
    assert build_parser().parse_args(["serve", "--lock_settings", "false"]).lock_settings is False
    defaults = build_parser().parse_args(["serve"])
    assert (defaults.host, defaults.port, defaults.data_dir, defaults.lock_settings) == (
        "127.0.0.1", 7801, Path("Data"), False)


def test_bad_flags_are_clear_errors(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "swarmkeeper", "serve", "--loglevel", "chatty", "--data_dir",
                             str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "Unknown log level 'chatty'" in result.stderr
    result = subprocess.run([sys.executable, "-m", "swarmkeeper", "serve", "--lock_settings", "maybe"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "expected true or false" in result.stderr


@pytest.fixture
def locked_server(data_dir: Path) -> ServerProcess:
    server = ServerProcess(data_dir, "--lock_settings", "--loglevel", "Debug").start()
    yield server
    server.stop()


async def test_locked_settings_refuse_changes_but_not_reads_or_frees(locked_server: ServerProcess) -> None:
    async with locked_server.client() as http:
        api = APIClient(http)
        for route, params in [("AddNewBackend", {"type_id": "swarmkeeper_dummy"}),
                              ("DeleteBackend", {"backend_id": 0}),
                              ("ToggleBackend", {"backend_id": 0, "enabled": False}),
                              ("EditBackend", {"backend_id": 0, "title": "", "settings": {}}),
                              ("RestartBackends", {})]:
            assert await api.error(route, **params) == "Settings are locked."
        # parameter errors come before the lock check
        assert await api.error("DeleteBackend") == "Missing required parameter 'backend_id'"
        assert await api.ok("ListBackends") == {}
        assert await api.ok("FreeBackendMemory") == {"result": False, "count": 0}
    assert not (locked_server.data_dir / "Backends.fds").exists()


def test_log_lines_have_swarmui_shape(locked_server: ServerProcess) -> None:
    httpx.post(f"{locked_server.url}/API/GetNewSession", json={})
    lines = [line for line in locked_server.output().splitlines() if line.strip()]
    assert lines, "the server printed nothing"
    shape = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d \[(Verbose|Debug|Info|Init|Warning|Error)\] ")
    assert all(shape.match(line) for line in lines), [line for line in lines if not shape.match(line)]
    assert any("[Info] swarmkeeper is ready" in line for line in lines)
