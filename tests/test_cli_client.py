"""`swarmkeeper backends ...` and `swarmkeeper status` against a real server on loopback: tables,
JSON output (the API's answer unchanged), and exit codes (0 done, 1 refused, 2 usage, 3 unreachable).
The last tests run the command as its own process, as a script would."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper.cli import build_parser
from swarmkeeper.cli_client.context import execute
from swarmkeeper.logs import LogStoreHandler
from tests.ports import free_port
from tests.servers import APIClient, LoopbackServer, ServerProcess, on_loopback, test_config

DUMMY = "swarmkeeper_dummy"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class TTYInput(io.StringIO):
    def isatty(self) -> bool:
        return True


async def cli(url: str, *argv: str, stdin: io.StringIO | None = None) -> Result:
    """Run one client command in this process, as `swarmkeeper ...` would."""
    args = build_parser().parse_args([*argv, "--url", url])
    out, err = io.StringIO(), io.StringIO()
    code = await execute(args.run.command, args, out=out, err=err, stdin=stdin or io.StringIO())
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LoopbackServer]:
    async with on_loopback(test_config(data_dir)) as running:
        yield running


@pytest.fixture
async def api(server: LoopbackServer) -> AsyncIterator[APIClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield APIClient(http, server.services)


async def running_backend(server: LoopbackServer, api: APIClient, *sets: str) -> int:
    result = await cli(server.url, "backends", "add", DUMMY, "--set", "Address=x", *sets, "--json")
    assert result.code == 0, result.err
    await api.wait_status(result.json()["id"], "running")
    return int(result.json()["id"])


# --- reading ---

async def test_types_table_settings_and_json(server: LoopbackServer, api: APIClient) -> None:
    table = await cli(server.url, "backends", "types")
    assert table.code == 0 and table.out.splitlines()[0].split() == ["ID", "NAME", "STANDARD", "DESCRIPTION"]
    assert any(line.startswith(DUMMY + " ") for line in table.out.splitlines())
    settings = await cli(server.url, "backends", "types", DUMMY)
    assert settings.code == 0 and "OverQueue" in settings.out and "ok, fail, hang" in settings.out
    as_json = await cli(server.url, "backends", "types", "--json")
    assert as_json.json() == await api.ok("ListBackendTypes")
    missing = await cli(server.url, "backends", "types", "nosuchtype")
    assert missing.code == 1 and "no backend type 'nosuchtype'" in missing.err


async def test_list_table_and_json_match_list_backends(server: LoopbackServer, api: APIClient) -> None:
    assert (await cli(server.url, "backends", "list")).out.strip() == "No backends."
    backend_id = await running_backend(server, api)
    await cli(server.url, "backends", "add", DUMMY, "--title", "second box")
    listing = await cli(server.url, "backends", "list", "--json")
    assert listing.code == 0 and listing.json() == await api.ok("ListBackends")
    rows = (await cli(server.url, "backends", "list")).out.splitlines()
    assert rows[0].split()[:4] == ["ID", "TYPE", "STATUS", "ENABLED"]
    assert rows[1].split()[:4] == [str(backend_id), DUMMY, "running", "yes"]
    assert "second box" in rows[2] and "No address is set." in rows[2]


async def test_status_prints_the_current_status(server: LoopbackServer, api: APIClient) -> None:
    empty = await cli(server.url, "status")
    assert empty.code == 0 and empty.out.startswith("Backends:    empty - No backends present.")
    await running_backend(server, api)
    status = await cli(server.url, "status")
    assert "Backends:    running\n" in status.out and "Features:    dummy" in status.out
    assert (await cli(server.url, "status", "--json")).json() == await api.ok("GetCurrentStatus")


@pytest.fixture
def kept_logs(server: LoopbackServer) -> Iterator[None]:
    """Backend log lines kept by the server's log store, as `serve` sets it up."""
    logger, handler = logging.getLogger("swarmkeeper"), LogStoreHandler(server.services.logs)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_logs_show_a_backends_lines(server: LoopbackServer, api: APIClient, kept_logs: None) -> None:
    backend_id = await running_backend(server, api)
    text = await cli(server.url, "backends", "logs", str(backend_id))
    assert text.code == 0 and "[Info] Dummy backend starting (x, mode ok)" in text.out
    as_json = await cli(server.url, "backends", "logs", str(backend_id), "--json")
    assert any("Dummy backend starting" in line["message"] for line in as_json.json()["data"][f"backend-{backend_id}"])


async def wait_for_count(out: io.StringIO, text: str, count: int) -> None:
    for _ in range(400):
        if out.getvalue().count(text) >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never printed {text!r} {count} times: {out.getvalue()!r}")


@pytest.mark.parametrize("as_json", [False, True])
async def test_logs_follow_prints_new_lines(server: LoopbackServer, api: APIClient, kept_logs: None,
                                            as_json: bool) -> None:
    backend_id = await running_backend(server, api)
    argv = ["backends", "logs", str(backend_id), "--follow", "--interval", "0.05", "--url", server.url]
    args = build_parser().parse_args(argv + (["--json"] if as_json else []))
    out = io.StringIO()
    task = asyncio.create_task(execute(args.run.command, args, out=out, err=io.StringIO()))
    try:
        await wait_for_count(out, "Dummy backend starting", 1)
        await api.ok("RestartBackends", backend=str(backend_id))
        await wait_for_count(out, "Dummy backend starting", 2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if as_json:
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [line["sequence_id"] for line in lines] == sorted({line["sequence_id"] for line in lines})


# --- changing ---

async def test_add_with_title_and_settings(server: LoopbackServer, api: APIClient) -> None:
    result = await cli(server.url, "backends", "add", DUMMY, "--title", "GPU 1", "--set", "Address=x",
                       "--set", "OverQueue=3", "--set", "Token=s3cret")
    assert result.code == 0, result.err
    assert result.out.startswith("Backend #0 (swarmkeeper_dummy)") and "Token = <secret>" in result.out
    entry = (await api.ok("ListBackends"))["0"]
    assert (entry["title"], entry["settings"]["Address"], entry["settings"]["OverQueue"]) == ("GPU 1", "x", 3)
    plain = await cli(server.url, "backends", "add", DUMMY, "--json")
    assert plain.code == 0 and plain.json()["id"] == 1 and plain.json()["modcount"] == 0


async def test_add_refuses_unknown_settings_and_leaves_nothing_on_a_bad_value(server: LoopbackServer,
                                                                              api: APIClient) -> None:
    typo = await cli(server.url, "backends", "add", DUMMY, "--set", "Adress=x")
    assert typo.code == 2 and "has no setting 'Adress'" in typo.err and "Address" in typo.err
    bad = await cli(server.url, "backends", "add", DUMMY, "--set", "OverQueue=abc")
    assert bad.code == 1 and "Invalid value 'abc' for setting 'OverQueue'" in bad.err and "removed again" in bad.err
    unknown_type = await cli(server.url, "backends", "add", "nosuchtype")
    assert unknown_type.code == 1 and "Invalid backend type: nosuchtype" in unknown_type.err
    malformed = await cli(server.url, "backends", "add", DUMMY, "--set", "novalue")
    assert malformed.code == 2 and "Name=value" in malformed.err
    assert await api.ok("ListBackends") == {}


async def test_edit_keeps_what_is_not_given(server: LoopbackServer, api: APIClient) -> None:
    backend_id = await running_backend(server, api, "--set", "OverQueue=2")
    titled = await cli(server.url, "backends", "edit", str(backend_id), "--title", "renamed", "--json")
    assert titled.code == 0 and titled.json()["title"] == "renamed"
    assert titled.json()["settings"]["OverQueue"] == 2 and titled.json()["modcount"] == 2
    changed = await cli(server.url, "backends", "edit", str(backend_id), "--set", "Ratio=0.25", "--json")
    assert changed.json()["title"] == "renamed" and changed.json()["settings"]["Ratio"] == 0.25
    moved = await cli(server.url, "backends", "edit", str(backend_id), "--new_id", "7", "--json")
    assert moved.code == 0 and moved.json()["id"] == 7 and list(await api.ok("ListBackends")) == ["7"]
    nothing = await cli(server.url, "backends", "edit", "7")
    assert nothing.code == 2 and "nothing to change" in nothing.err
    missing = await cli(server.url, "backends", "edit", "99", "--title", "x")
    assert missing.code == 1 and "there is no backend #99" in missing.err


async def test_toggle_restart_and_free(server: LoopbackServer, api: APIClient) -> None:
    backend_id = await running_backend(server, api)
    off = await cli(server.url, "backends", "toggle", str(backend_id), "off")
    assert (off.code, off.out.strip()) == (0, f"Backend #{backend_id}: Success.")
    assert (await api.ok("ListBackends"))[str(backend_id)]["enabled"] is False
    not_running = await cli(server.url, "backends", "restart", str(backend_id))
    assert not_running.code == 1 and "it is disabled" in not_running.err and "--force" in not_running.err
    not_freed = await cli(server.url, "backends", "free", str(backend_id))
    assert not_freed.code == 1 and "No running backend to free." in not_freed.out
    assert (await cli(server.url, "backends", "toggle", str(backend_id), "on")).code == 0
    await api.wait_status(backend_id, "running")
    restarted = await cli(server.url, "backends", "restart", "all", "--json")
    assert (restarted.code, restarted.json()) == (0, {"result": "Success.", "count": 1})
    await api.wait_status(backend_id, "running")
    freed = await cli(server.url, "backends", "free", "--system_ram")
    assert (freed.code, freed.out.strip()) == (0, "Freed memory on 1 backend.")
    assert api.services.registry.get(backend_id).backend.freed == [True]
    bad = await cli(server.url, "backends", "toggle", str(backend_id), "maybe")
    assert bad.code == 2 and "on or off" in bad.err
    assert (await cli(server.url, "backends", "restart", "first")).code == 2


async def test_delete_asks_unless_told(server: LoopbackServer, api: APIClient) -> None:
    backend_id = await running_backend(server, api)
    scripted = await cli(server.url, "backends", "delete", str(backend_id))
    assert scripted.code == 2 and "--yes" in scripted.err
    declined = await cli(server.url, "backends", "delete", str(backend_id), stdin=TTYInput("n\n"))
    assert declined.code == 1 and "Delete backend #0 (swarmkeeper_dummy)? [y/N]" in declined.err
    assert str(backend_id) in await api.ok("ListBackends")
    confirmed = await cli(server.url, "backends", "delete", str(backend_id), stdin=TTYInput("y\n"))
    assert (confirmed.code, confirmed.out.strip()) == (0, f"Deleted backend #{backend_id}.")
    again = await cli(server.url, "backends", "delete", str(backend_id), "--yes", "--json")
    assert again.code == 1 and again.json() == {"result": "Already didn't exist."}


# --- connections and keys ---

async def test_unreachable_and_bad_urls() -> None:
    nobody = await cli(f"http://127.0.0.1:{free_port()}", "backends", "list")
    assert nobody.code == 3 and "cannot reach" in nobody.err and "connection refused" in nobody.err
    bad = await cli("not a url", "status")
    assert bad.code == 2 and "--url" in bad.err


async def test_not_a_swarm_server(server: LoopbackServer) -> None:
    result = await cli(server.url + "/static", "status")  # answers, but not SwarmUI's API
    assert result.code == 3 and "not SwarmUI's API" in result.err


async def test_api_key_from_flag_or_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmkeeper.accounts.callers import account_user
    from swarmkeeper.accounts.passwords import client_prehash
    from tests.accounts_support import write_settings

    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": False})
    async with on_loopback(test_config(data_dir, require_accounts=True)) as server:
        accounts = server.services.accounts
        await accounts.add_user("ops", client_prehash("ops", "a long enough password"), "admin")
        _, key = await accounts.create_key(account_user(await accounts.account("ops")), "cli", "", 0)
        assert (await cli(server.url, "backends", "list", "--api_key", key)).out.strip() == "No backends."
        refused = await cli(server.url, "backends", "list")
        assert refused.code == 1 and "the server refused" in refused.err
        wrong = await cli(server.url, "backends", "list", "--api_key", key[:-4] + "abcd")
        assert wrong.code == 1 and "invalid_api_key" in wrong.err
        monkeypatch.setenv("SWARMKEEPER_API_KEY", key)
        assert (await cli(server.url, "backends", "add", DUMMY)).code == 0


# --- as a process ---

@pytest.fixture
def server_process(data_dir: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir).start()
    yield process
    process.stop()


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swarmkeeper", *argv], capture_output=True, text=True, timeout=60,
                          env=env)


def test_exit_codes_of_the_command_itself(server_process: ServerProcess) -> None:
    import os

    url = server_process.url
    added = run("backends", "add", DUMMY, "--set", "Address=x", "--json", "--url", url)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["settings"]["Address"] == "x"
    env = {**os.environ, "SWARMKEEPER_URL": url}
    listed = run("backends", "list", "--json", env=env)
    assert listed.returncode == 0 and list(json.loads(listed.stdout)) == ["0"]
    assert run("backends", "toggle", "5", "off", env=env).returncode == 1
    assert run("backends", "restart", "x", env=env).returncode == 2
    assert run("backends", "frobnicate", env=env).returncode == 2
    assert run("status", "--url", f"http://127.0.0.1:{free_port()}").returncode == 3
