"""Seconds from AddNewBackend + EditBackend to ``running`` for a real self-started ComfyUI, against
starting the same ComfyUI by hand and polling it, measured in the same run, rounds interleaved.

    .venv/bin/python bench/selfstart.py [--rounds 5] [--poll 0.05]

The ComfyUI is the one scripts/comfyui-peer installs (``main.py`` with its ``venv``), run with the
same arguments both ways. "By hand" is: spawn it, then GET /object_info every ``--poll`` seconds
until it answers 200 (the answer swarmkeeper also waits for, and parses, before saying running).
A warm-up start (not counted) comes first, so ``.pyc`` compilation is nobody's cost.

ComfyUI's own start (10-30 s on a CPU) varies far more from one start to the next than anything
swarmkeeper adds, so besides the whole time it also prints the part after ComfyUI said it listens
(its ``To see the GUI go to`` line): that is where swarmkeeper's own cost shows. Prints each round,
the medians, the ratio of the medians (goal: at most 1.1) and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarmkeeper import fds  # noqa: E402
from swarmkeeper.config import ServerSettings  # noqa: E402
from swarmkeeper.files import write_atomic  # noqa: E402
from swarmkeeper.net import free_port  # noqa: E402

COMFY_ARGS = ["--cpu", "--disable-api-nodes", "--database-url", "sqlite:///:memory:"]
SETTINGS = {"ExtraArgs": " ".join(COMFY_ARGS), "FrontendVersion": "None", "EnablePreviews": "false"}
LISTENING = "To see the GUI go to"


@dataclasses.dataclass(frozen=True)
class Start:
    total: float  # seconds from the first request (or the spawn) to ready
    listening: float  # seconds from then to ComfyUI's "To see the GUI go to" line

    @property
    def after_listening(self) -> float:
        return self.total - self.listening


def comfy_main() -> Path:
    done = subprocess.run([str(ROOT / "scripts" / "comfyui-peer"), "path", "--main"], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"real ComfyUI missing: {done.stderr.strip()} (scripts/setup --test installs it)")
    return Path(done.stdout.strip())


async def watch_for_listening(stream: asyncio.StreamReader, started: float, seen: list[float]) -> None:
    while line := await stream.readline():
        if not seen and LISTENING.encode() in line:
            seen.append(time.monotonic() - started)


async def by_hand(main: Path, temp: Path, poll: float) -> Start:
    """Start ComfyUI as swarmkeeper would, poll /object_info, kill it; when it answered."""
    port = free_port()
    argv = [str(main.parent / "venv" / "bin" / "python3"), "-s", "main.py", *COMFY_ARGS, "--port", str(port),
            "--temp-directory", str(temp)]
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(*argv, cwd=main.parent, stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                                   start_new_session=True)
    assert process.stderr is not None
    seen: list[float] = []
    reader = asyncio.create_task(watch_for_listening(process.stderr, started, seen))
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            while process.returncode is None:
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/object_info")).status_code == 200:
                        return Start(time.monotonic() - started, seen[0] if seen else float("nan"))
                except httpx.TransportError:
                    pass
                await asyncio.sleep(poll)
        raise RuntimeError(f"ComfyUI exited with {process.returncode} before answering")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        reader.cancel()


@dataclasses.dataclass
class Server:
    http: httpx.AsyncClient
    session: str

    async def call(self, route: str, **params: object) -> dict[str, object]:
        answer = (await self.http.post(f"/API/{route}", json={"session_id": self.session, **params})).json()
        if "error" in answer:
            raise RuntimeError(f"{route}: {answer}")
        return answer


@asynccontextmanager
async def swarmkeeper_server(folder: Path) -> AsyncIterator[Server]:
    data = folder / "Data"
    data.mkdir()
    settings = ServerSettings(network=dataclasses.replace(ServerSettings().network,
                                                          BackendStartingPort=free_port() + 100))
    write_atomic(data / "Settings.fds", fds.dumps(settings.to_fds()))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarmkeeper", "serve", "--port", str(port), "--data_dir", str(data), "--loglevel",
        "Warning", cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield Server(http, await new_session(http))
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()


async def new_session(http: httpx.AsyncClient) -> str:
    for _ in range(600):
        try:
            return str((await http.post("/API/GetNewSession", json={})).json()["session_id"])
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise RuntimeError("swarmkeeper did not start")


async def listening_time(server: Server, backend_id: object) -> float:
    """The wall-clock time of the backend's ``To see the GUI go to`` line, from its log."""
    name = f"backend-{backend_id}"
    answer = await server.call("ListRecentLogMessages", types=[name])
    lines = answer["data"][name]  # type: ignore[index]
    stamp = next(line["time"] for line in lines if LISTENING in line["message"])
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


async def through_swarmkeeper(server: Server, main: Path, poll: float) -> Start:
    """AddNewBackend + EditBackend, then ListBackends until running; the backend is deleted after."""
    wall, started = time.time(), time.monotonic()
    backend_id = (await server.call("AddNewBackend", type_id="comfyui_selfstart"))["id"]
    await server.call("EditBackend", backend_id=backend_id, title="bench",
                      settings={"StartScript": str(main), **SETTINGS})
    try:
        while True:
            entry = (await server.call("ListBackends"))[str(backend_id)]
            assert isinstance(entry, dict)
            if entry["status"] == "running":
                total = time.monotonic() - started
                return Start(total, await listening_time(server, backend_id) - wall)
            if entry["status"] == "errored":
                raise RuntimeError(f"backend errored: {entry['status_reason']}")
            await asyncio.sleep(poll)
    finally:
        await server.call("DeleteBackend", backend_id=backend_id)


def summary(name: str, starts: list[Start]) -> str:
    total = statistics.median(start.total for start in starts)
    after = statistics.median(start.after_listening for start in starts)
    return f"{name}: median {total:.2f} s, of which {after:.3f} s after ComfyUI said it listens"


async def bench(rounds: int, poll: float) -> None:
    comfy = comfy_main()
    hand: list[Start] = []
    ours: list[Start] = []
    with tempfile.TemporaryDirectory(prefix="bench-selfstart-") as tmp:
        async with swarmkeeper_server(Path(tmp)) as server:
            warm = await by_hand(comfy, Path(tmp) / "warm", poll)
            print(f"warm-up start by hand: {warm.total:.2f} s (not counted)")
            for n in range(rounds):
                for name in ("hand", "swarmkeeper") if n % 2 == 0 else ("swarmkeeper", "hand"):
                    if name == "hand":
                        hand.append(start := await by_hand(comfy, Path(tmp) / f"hand-{n}", poll))
                    else:
                        ours.append(start := await through_swarmkeeper(server, comfy, poll))
                    print(f"round {n + 1}: {name:12s} {start.total:6.2f} s  (after listening: "
                          f"{start.after_listening:.3f} s)", flush=True)
    print(summary("by hand (spawn + poll /object_info)", hand))
    print(summary("swarmkeeper (AddNewBackend + EditBackend -> running)", ours))
    ratio = statistics.median(s.total for s in ours) / statistics.median(s.total for s in hand)
    paired = statistics.median(o.total / h.total for o, h in zip(ours, hand, strict=True))
    print(f"ratio swarmkeeper / by hand: {ratio:.3f} (goal: at most 1.1); median of the per-round ratios: "
          f"{paired:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between polls, both ways (default 0.05)")
    args = parser.parse_args()
    asyncio.run(bench(args.rounds, args.poll))


if __name__ == "__main__":
    main()
