"""Self-started ComfyUIs that outlive the server are adopted by the next one (the fake ComfyUI
script in real processes): after --keep_backends and after kill -9 the same process is taken back;
a process that does not answer is stopped with its tree and relaunched; a foreign process on the
recorded pid is never touched; the record follows the process through toggle, edit and delete;
leftovers of backends that changed or went are stopped; an adopted port is never given away."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from swarmkeeper import fds
from swarmkeeper.backends.base import RECORDS_FILE
from swarmkeeper.cli import build_parser
from swarmkeeper.files import write_atomic
from swarmkeeper.metrics import AdoptionOutcome
from swarmkeeper.net import port_in_use
from swarmkeeper.process.adopted import start_ticks
from swarmkeeper_doubles.fake_comfyui_script import write_main
from tests.adoption_support import (
    PLAIN,
    SELF,
    add_selfstart,
    alive,
    answers,
    comfy_server_with,
    no_leftovers,  # noqa: F401 - the fixture
    records,
    server,
    session_of,
    wait_running,
)
from tests.comfy_backends import QUICK_STOP, add_backend, launches, log_lines, write_settings
from tests.metrics_support import scrape, value
from tests.ports import port_block
from tests.process_fakes import poll_until
from tests.servers import APIClient

pytestmark = pytest.mark.usefixtures("no_leftovers")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    return write_main(tmp_path / "ComfyUI")


@pytest.fixture
def first_port() -> int:
    """A base port of its own per test (parallel runs on one machine must not meet)."""
    return port_block()


async def running(api: APIClient, backend_id: int) -> dict:
    entry = await api.wait_status(backend_id, "running", "errored", timeout=30)
    assert entry["status"] == "running", entry
    return entry


async def adoptions(api: APIClient, outcome: AdoptionOutcome) -> float:
    return value(await scrape(api), "swarmkeeper_adoptions_total", type=SELF, outcome=str(outcome))


# --- --keep_backends, in-process ---


async def test_keep_backends_leaves_them_running_and_the_next_start_adopts_them(
        data_dir: Path, script: Path, first_port: int) -> None:
    async with comfy_server_with(data_dir, first_port=first_port, keep=True) as api:
        backend_id = await add_backend(api, SELF, StartScript=str(script), ExtraArgs="--fake-child", **PLAIN)
        before = await running(api, backend_id)
        (launch,) = launches(api, backend_id)
    assert alive(before["pid"]) and alive(launch["grandchild"]) and answers(before["api_url"])
    assert records(data_dir)[str(backend_id)]["pid"] == before["pid"]

    async with comfy_server_with(data_dir, first_port=first_port) as api:
        after = await running(api, backend_id)
        assert (after["pid"], after["api_url"]) == (before["pid"], before["api_url"])
        assert launches(api, backend_id) == []  # nothing was launched: no FAKE-LAUNCH line this time
        assert f"Self-Start ComfyUI-{backend_id} adopted: pid {before['pid']} on port {first_port + 1}, left " \
               "running by an earlier start (its loaded models stay loaded)" in log_lines(api, backend_id)
        assert await adoptions(api, AdoptionOutcome.ADOPTED) == 1
    # a graceful stop without --keep_backends stops it (SwarmUI's behaviour), the whole tree
    assert not alive(before["pid"])
    await poll_until(lambda: not alive(launch["grandchild"]))  # killed with the tree; it dies in its own time
    assert records(data_dir) == {}
    assert f"[ComfyUI-{backend_id}/STDERR] Stopped server" in log_lines(api, backend_id)  # its output is followed


async def test_an_adopted_process_that_does_not_answer_is_stopped_with_its_tree_and_relaunched(
        data_dir: Path, script: Path, first_port: int) -> None:
    async with comfy_server_with(data_dir, first_port=first_port, keep=True) as api:
        backend_id = await add_backend(api, SELF, StartScript=str(script), ExtraArgs="--fake-child", **PLAIN)
        before = await running(api, backend_id)
        (launch,) = launches(api, backend_id)
    async with httpx.AsyncClient() as http:  # alive, but it stops answering anything
        assert (await http.post(f"{before['api_url']}/__fake__/fault", json={"fault": "hang"})).status_code == 200

    impatient = dataclasses.replace(QUICK_STOP, adopt_wait=1.0)
    async with comfy_server_with(data_dir, first_port=first_port, policy=impatient) as api:
        after = await running(api, backend_id)
        assert after["pid"] != before["pid"] and after["api_url"] != before["api_url"]
        assert not alive(before["pid"])
        await poll_until(lambda: not alive(launch["grandchild"]))
        assert len(launches(api, backend_id)) == 1
        assert f"ComfyUI-{backend_id} (pid {before['pid']}), left running by an earlier start, did not answer: it " \
               "was stopped, and a new one is launched" in log_lines(api, backend_id)
        assert await adoptions(api, AdoptionOutcome.RELAUNCHED) == 1
        assert records(data_dir)[str(backend_id)]["pid"] == after["pid"]


@pytest.mark.parametrize("differs", ["start time", "command line"])
async def test_a_foreign_process_on_the_recorded_pid_is_never_adopted_nor_stopped(
        data_dir: Path, script: Path, first_port: int, differs: str, no_leftovers: list[int]) -> None:  # noqa: F811
    async with comfy_server_with(data_dir, first_port=first_port, keep=True) as api:
        backend_id = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
        before = await running(api, backend_id)
    os.kill(before["pid"], signal.SIGKILL)  # ours is gone, and another process has the pid now:
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # noqa: ASYNC220
    no_leftovers.append(foreign.pid)
    record = records(data_dir)[str(backend_id)]
    found = psutil.Process(foreign.pid)
    if differs == "start time":
        record |= {"pid": foreign.pid, "cmdline": found.cmdline()}  # the recorded start time stays
    else:  # the recorded command line stays
        record |= {"pid": foreign.pid, "started": found.create_time(), "ticks": start_ticks(foreign.pid)}
    write_atomic(data_dir / RECORDS_FILE, json.dumps({"version": 1, "processes": {str(backend_id): record}}))

    async with comfy_server_with(data_dir, first_port=first_port) as api:
        after = await running(api, backend_id)
        assert after["pid"] not in (foreign.pid, before["pid"]) and len(launches(api, backend_id)) == 1
        assert foreign.poll() is None and found.is_running()  # not adopted, not signalled
        assert await adoptions(api, AdoptionOutcome.FOREIGN) == 1
    assert foreign.poll() is None  # nor stopped when the server stopped its backends
    foreign.kill()
    foreign.wait()


# --- the record file ---


async def test_the_record_follows_the_process_and_goes_with_toggle_edit_and_delete(
        data_dir: Path, script: Path, first_port: int) -> None:
    async with comfy_server_with(data_dir, first_port=first_port) as api:
        backend_id = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
        key = str(backend_id)
        first = await running(api, backend_id)
        # The records file is written in the background, coalesced (process/records.py): it follows
        # the status shortly after, so each check waits for the file to catch up.
        await poll_until(lambda: records(data_dir).get(key, {}).get("ready") is True)
        record = records(data_dir)[key]
        assert (record["pid"], record["port"], record["ready"]) == (first["pid"], first_port + 1, True)
        assert record["output_dir"] == str(data_dir / "ComfyUI" / f"backend-{backend_id}")
        assert record["cmdline"] == psutil.Process(first["pid"]).cmdline()

        await api.ok("ToggleBackend", backend_id=backend_id, enabled=False)
        assert not alive(first["pid"])
        await poll_until(lambda: key not in records(data_dir))
        await api.ok("ToggleBackend", backend_id=backend_id, enabled=True)
        second = await running(api, backend_id)
        await poll_until(lambda: records(data_dir).get(key, {}).get("pid") == second["pid"])

        await api.ok("EditBackend", backend_id=backend_id, title="", settings={"ExtraArgs": "--fake-startup 0.2"})
        assert not alive(second["pid"])
        third = await running(api, backend_id)
        await poll_until(lambda: records(data_dir).get(key, {}).get("pid") == third["pid"])
        assert records(data_dir)[key]["fingerprint"] != record["fingerprint"]

        await api.ok("DeleteBackend", backend_id=backend_id)
        assert not alive(third["pid"])
        await poll_until(lambda: records(data_dir) == {})


async def test_leftovers_whose_backend_changed_or_went_are_stopped_at_start(
        data_dir: Path, script: Path, first_port: int) -> None:
    async with comfy_server_with(data_dir, first_port=first_port, keep=True) as api:
        changed = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
        disabled = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
        deleted = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
        old = {backend_id: (await running(api, backend_id))["pid"] for backend_id in (changed, disabled, deleted)}
    path = data_dir / "Backends.fds"  # edited by hand (or by SwarmUI) while swarmkeeper was down
    root = fds.loads(path.read_text())
    root[str(changed)]["settings"].set("ExtraArgs", "--fake-startup 0.1")
    root[str(disabled)].set("enabled", False)
    del root[str(deleted)]
    path.write_text(fds.dumps(root))

    async with comfy_server_with(data_dir, first_port=first_port) as api:
        relaunched = await running(api, changed)
        assert relaunched["pid"] != old[changed] and not alive(old[changed])
        await poll_until(lambda: not alive(old[disabled]) and not alive(old[deleted]))  # stopped in the background
        await poll_until(lambda: set(records(data_dir)) == {str(changed)})
        assert await adoptions(api, AdoptionOutcome.CHANGED) == 1
        assert await adoptions(api, AdoptionOutcome.ORPHANED) == 2


async def test_the_port_of_an_adopted_backend_is_never_handed_to_another_backend(
        data_dir: Path, script: Path, first_port: int) -> None:
    async with comfy_server_with(data_dir, first_port=first_port, keep=True) as api:
        kept = await add_backend(api, SELF, StartScript=str(script), AutoRestart=False, **PLAIN)
        port = int((await running(api, kept))["api_url"].rsplit(":", 1)[1])
    assert port == first_port + 1

    async with comfy_server_with(data_dir, first_port=first_port) as api:  # counting starts again from first_port
        adopted = await running(api, kept)
        assert api.services is not None and port in api.services.manager.services.ports.reserved
        os.kill(adopted["pid"], signal.SIGKILL)  # it dies: its port has no listener now
        await api.wait_status(kept, "errored")
        assert not port_in_use(port)
        other = await add_backend(api, SELF, StartScript=str(script), **PLAIN)
        assert (await running(api, other))["api_url"] == f"http://127.0.0.1:{port + 1}"


# --- kill -9 and the serve flag, with swarmkeeper as its own process ---


async def test_kill_9_leaves_the_comfyui_running_and_the_restarted_server_adopts_it(
        data_dir: Path, script: Path, first_port: int) -> None:
    write_settings(data_dir, first_port=first_port)
    first = server(data_dir).start()
    try:
        async with first.client() as http:
            session = await session_of(http)
            backend_id = await add_selfstart(http, session, StartScript=str(script), ExtraArgs="--fake-child", **PLAIN)
            before = await wait_running(http, session, backend_id, timeout=30)
    finally:
        first.kill()  # kill -9: no shutdown code runs
    assert alive(before["pid"]) and answers(before["api_url"])  # in its own session, writing to files

    second = server(data_dir).start()
    try:
        async with second.client() as http:
            after = await wait_running(http, await session_of(http), backend_id, timeout=30)
        assert (after["pid"], after["api_url"]) == (before["pid"], before["api_url"])
    finally:
        second.stop()  # SIGTERM: graceful, without --keep_backends: stopped, as SwarmUI does
    assert "Shutdown complete" in second.output()
    assert not alive(before["pid"]) and records(data_dir) == {}
    assert f"Self-Start ComfyUI-{backend_id} adopted: pid {before['pid']}" in second.output()
    assert "is loading..." not in second.output()  # no second ComfyUI was launched


async def test_serve_keep_backends_leaves_them_on_sigterm_for_the_next_start(
        data_dir: Path, script: Path, first_port: int) -> None:
    write_settings(data_dir, first_port=first_port)
    first = server(data_dir, "--keep_backends").start()
    try:
        async with first.client() as http:
            session = await session_of(http)
            backend_id = await add_selfstart(http, session, StartScript=str(script), **PLAIN)
            before = await wait_running(http, session, backend_id, timeout=30)
    finally:
        first.stop()  # SIGTERM (uvicorn re-raises it after its graceful shutdown)
    assert "Shutdown complete" in first.output()
    assert alive(before["pid"]) and answers(before["api_url"])
    assert "is left running on port" in first.output()

    second = server(data_dir).start()
    try:
        async with second.client() as http:
            after = await wait_running(http, await session_of(http), backend_id, timeout=30)
        assert after["pid"] == before["pid"]
    finally:
        second.stop()
    assert not alive(before["pid"])


def test_the_keep_backends_flag_reads_as_the_other_boolean_flags() -> None:
    assert build_parser().parse_args(["serve"]).keep_backends is False
    assert build_parser().parse_args(["serve", "--keep_backends"]).keep_backends is True
    assert build_parser().parse_args(["serve", "--keep-backends", "false"]).keep_backends is False
