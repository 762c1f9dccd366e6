"""Seconds from AddNewBackend + EditBackend to ``running`` for a real self-started ComfyUI, against
starting the same ComfyUI by hand and polling it, measured in the same run, rounds interleaved.

    .venv/bin/python bench/selfstart.py [--rounds 3] [--poll 0.05]

The ComfyUI is the one scripts/comfyui-peer installs (``main.py`` with its ``venv``), run with the
same arguments both ways. "By hand" is: spawn it, then GET /object_info every ``--poll`` seconds
until it answers 200 (the answer swarmkeeper also waits for, and parses, before saying running).
A warm-up start (not counted) comes first, so ``.pyc`` compilation is nobody's cost.
Prints each round, the medians and their ratio (goal: at most 1.1).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def comfy_main() -> Path:
    done = subprocess.run([str(ROOT / "scripts" / "comfyui-peer"), "path", "--main"], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"real ComfyUI missing: {done.stderr.strip()} (scripts/setup --test installs it)")
    return Path(done.stdout.strip())


def by_hand(main: Path, temp: Path, poll: float) -> float:
    """Start ComfyUI as swarmkeeper would, poll /object_info, stop it; seconds to the first 200."""
    port = free_port()
    argv = [str(main.parent / "venv" / "bin" / "python3"), "-s", "main.py", *COMFY_ARGS, "--port", str(port),
            "--temp-directory", str(temp)]
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=main.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with httpx.Client(timeout=60) as http:
            while process.poll() is None:
                try:
                    if http.get(f"http://127.0.0.1:{port}/object_info").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                time.sleep(poll)
        raise RuntimeError(f"ComfyUI exited with {process.returncode} before answering")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


@dataclasses.dataclass
class Server:
    url: str
    session: str
    http: httpx.Client

    def call(self, route: str, **params: object) -> dict[str, object]:
        answer = self.http.post(f"/API/{route}", json={"session_id": self.session, **params}).json()
        if "error" in answer:
            raise RuntimeError(f"{route}: {answer}")
        return answer


@contextmanager
def swarmkeeper_server(folder: Path) -> Iterator[Server]:
    data = folder / "Data"
    data.mkdir()
    settings = ServerSettings(network=dataclasses.replace(ServerSettings().network,
                                                          BackendStartingPort=free_port() + 100))
    write_atomic(data / "Settings.fds", fds.dumps(settings.to_fds()))
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "swarmkeeper", "serve", "--port", str(port), "--data_dir",
                                str(data), "--loglevel", "Warning"], cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            for _ in range(600):
                try:
                    session = http.post("/API/GetNewSession", json={}).json()["session_id"]
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("swarmkeeper did not start")
            yield Server(url, session, http)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def through_swarmkeeper(server: Server, main: Path, poll: float) -> float:
    """AddNewBackend + EditBackend, then ListBackends until running; the backend is deleted after."""
    started = time.monotonic()
    backend_id = server.call("AddNewBackend", type_id="comfyui_selfstart")["id"]
    server.call("EditBackend", backend_id=backend_id, title="bench", settings={"StartScript": str(main), **SETTINGS})
    try:
        while True:
            entry = server.call("ListBackends")[str(backend_id)]
            assert isinstance(entry, dict)
            if entry["status"] == "running":
                return time.monotonic() - started
            if entry["status"] == "errored":
                raise RuntimeError(f"backend errored: {entry['status_reason']}")
            time.sleep(poll)
    finally:
        server.call("DeleteBackend", backend_id=backend_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between polls, both ways (default 0.05)")
    args = parser.parse_args()
    comfy = comfy_main()
    hand: list[float] = []
    ours: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-selfstart-") as tmp, swarmkeeper_server(Path(tmp)) as server:
        print(f"warm-up start by hand: {by_hand(comfy, Path(tmp) / 'warm', args.poll):.2f} s (not counted)")
        for n in range(args.rounds):
            order = [("hand", hand), ("swarmkeeper", ours)]
            for name, results in order if n % 2 == 0 else reversed(order):
                seconds = (by_hand(comfy, Path(tmp) / f"hand-{n}", args.poll) if name == "hand"
                           else through_swarmkeeper(server, comfy, args.poll))
                results.append(seconds)
                print(f"round {n + 1}: {name:12s} {seconds:6.2f} s")
    hand_median, ours_median = statistics.median(hand), statistics.median(ours)
    print(f"by hand (spawn + poll /object_info): median {hand_median:.2f} s")
    print(f"swarmkeeper (AddNewBackend + EditBackend -> running): median {ours_median:.2f} s")
    print(f"ratio swarmkeeper / by hand: {ours_median / hand_median:.3f} (goal: at most 1.1)")


if __name__ == "__main__":
    main()
