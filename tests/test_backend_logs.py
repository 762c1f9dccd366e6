"""``swarmkeeper logs <id>`` against a real server process: a self-started ComfyUI's output lines
through the API, ``-n``, follow mode, and the exit codes for a wrong id or an unreachable server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from swarmkeeper_doubles.fake_comfyui_script import write_main
from tests.comfy_backends import write_settings
from tests.ports import free_port
from tests.process_fakes import poll_until
from tests.servers import ROOT, ServerProcess


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    write_settings(data_dir)
    process = ServerProcess(data_dir).start()
    try:
        yield process
    finally:
        process.stop()


async def call(http: httpx.AsyncClient, route: str, **params: object) -> dict[str, object]:
    session = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
    answer = (await http.post(f"/API/{route}", json={"session_id": session, **params})).json()
    assert "error" not in answer, answer
    return answer


@pytest.fixture
async def comfy_backend(server: ServerProcess, tmp_path: Path) -> AsyncIterator[int]:
    script = write_main(tmp_path / "ComfyUI")
    async with server.client() as http:
        backend_id = int((await call(http, "AddNewBackend", type_id="comfyui_selfstart"))["id"])  # type: ignore[call-overload]
        await call(http, "EditBackend", backend_id=backend_id, title="",
                   settings={"StartScript": str(script), "FrontendVersion": "None"})
        status = ""
        for _ in range(300):
            status = (await call(http, "ListBackends"))[str(backend_id)]["status"]  # type: ignore[index]
            if status in ("running", "errored"):
                break
            await asyncio.sleep(0.1)
        assert status == "running"
        yield backend_id


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarmkeeper", "logs", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def signal_state(pid: int) -> str:
    """Whether a process still runs and what it does with signals (/proc's masks), for a failure's
    message: a child that ignores Ctrl-C and one that has ended unseen look alike from outside."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as error:
        return f"no /proc entry ({error.strerror})"
    wanted = ("State", "SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd", "Threads")
    return "; ".join(line for line in status.splitlines() if line.split(":")[0] in wanted)


async def test_logs_prints_the_comfyui_output_of_a_backend(server: ServerProcess, comfy_backend: int) -> None:
    code, out, err = await cli(str(comfy_backend), "--url", server.url)
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.endswith(f"[Debug] [ComfyUI-{comfy_backend}/STDERR] Starting server") for line in lines)
    assert any(f"[Info] Self-Start ComfyUI-{comfy_backend} on port" in line for line in lines)
    code, out, _ = await cli(str(comfy_backend), "--url", server.url, "-n", "2")
    assert code == 0 and len(out.splitlines()) == 2 and out.splitlines() == lines[-2:]


async def test_logs_follow_prints_new_lines_as_they_come(server: ServerProcess, comfy_backend: int) -> None:
    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarmkeeper", "logs", str(comfy_backend), "-f", "--interval", "0.1", "--url",
        server.url, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert follower.stdout is not None
    seen: list[str] = []

    async def read() -> None:
        assert follower.stdout is not None
        while line := await follower.stdout.readline():
            seen.append(line.decode().rstrip("\n"))

    err: list[bytes] = []

    async def drain_errors() -> None:  # an unread stderr pipe that fills would block the follower
        assert follower.stderr is not None
        while chunk := await follower.stderr.read(4096):
            err.append(chunk)

    reading = asyncio.create_task(read())
    errors = asyncio.create_task(drain_errors())
    try:
        await poll_until(lambda: any("Starting server" in line for line in seen))
        follower.send_signal(signal.SIGUSR1)  # where it is, on stderr; it carries on
        async with server.client() as http:
            await call(http, "ToggleBackend", backend_id=comfy_backend, enabled=False)
        await poll_until(lambda: any(line.endswith(f"[ComfyUI-{comfy_backend}/STDERR] Stopped server")
                                     for line in seen))
    finally:
        follower.send_signal(signal.SIGINT)
        try:  # bounded: a follower that does not end on Ctrl-C fails here, named, not at pytest's timeout
            code = await asyncio.wait_for(follower.wait(), 30)
        except TimeoutError:
            state = signal_state(follower.pid)  # before anything else touches it
            follower.send_signal(signal.SIGUSR1)  # its stacks to stderr (swarmkeeper.cli), to say where it is
            with contextlib.suppress(AssertionError):  # the second dump: where it is now
                await poll_until(lambda: b"".join(err).count(b"most recent call first") >= 2, timeout=5)
            print(b"".join(err).decode(errors="replace")[-8000:])
            follower.kill()
            raise AssertionError(f"`swarmkeeper logs -f` did not end within 30 s of SIGINT; last lines {seen[-5:]}; "
                                 f"the follower then: {state}; pipes open: stdout {not reading.done()}, stderr "
                                 f"{not errors.done()}") from None
        await errors
        stacks = b"".join(err).decode(errors="replace")
        assert code == 0, stacks[-2000:]
        assert "most recent call first" in stacks and "swarmkeeper/cli.py" in stacks  # run_logs, in asyncio.run
        await reading
    assert len(seen) == len(set(seen))  # each line once, though it polled many times


async def test_logs_exit_codes(server: ServerProcess) -> None:
    code, out, err = await cli("42", "--url", server.url)
    assert (code, out) == (1, "") and "there is no backend 42" in err
    async with server.client() as http:
        quiet = (await call(http, "AddNewBackend", type_id="swarmkeeper_dummy"))["id"]
    code, out, err = await cli(str(quiet), "--url", server.url)
    assert (code, out) == (0, "") and f"backend {quiet} has logged nothing yet" in err
    code, _, err = await cli("0", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 3 and "Connection refused" in err
    code, _, err = await cli("0", "--url", "not a url")
    assert code == 2 and "not an http:// or https:// address" in err
