"""`swarmkeeper serve`: SwarmUI's flags, the log format, and locked settings."""

from __future__ import annotations

import re
import select
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from swarmkeeper.cli import build_parser
from tests.ports import free_port
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


def _ask(connection: socket.socket, request: bytes) -> int:
    """Send one HTTP/1.1 request on a kept-alive connection; the answer's status (its body read)."""
    connection.sendall(request)
    reader = connection.makefile("rb")
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    reader.read(length)
    return status


def test_idle_connections_outlast_a_clients_own_idle_expiry(data_dir: Path) -> None:
    """uvicorn's default (5 s) equals httpx's idle expiry, so a client could reuse a connection just as
    the server closed it; the API and the pool keep idle connections open for longer."""
    comfy_port = free_port()
    server = ServerProcess(data_dir, "--comfy_port", str(comfy_port)).start()
    try:
        api = socket.create_connection(("127.0.0.1", server.port))
        pool = socket.create_connection(("127.0.0.1", comfy_port))
        with api, pool:
            session = (b"POST /API/GetNewSession HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 2\r\n\r\n{}")
            features = b"GET /features HTTP/1.1\r\nHost: x\r\n\r\n"
            assert (_ask(api, session), _ask(pool, features)) == (200, 200)
            # Watch both connections past uvicorn's and httpx's 5 s: a close by the server would make
            # a socket readable (end of file) and end the wait at once.
            closed, _, _ = select.select([api, pool], [], [], 6.5)
            assert closed == []
            assert (_ask(api, session), _ask(pool, features)) == (200, 200)
    finally:
        server.stop()
