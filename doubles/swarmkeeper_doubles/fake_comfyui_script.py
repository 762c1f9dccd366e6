"""A stand-in for ComfyUI's ``main.py``, for self-start tests: it takes ComfyUI's flags (and
ignores those it does not know), serves the fake ComfyUI on ``--port``, and misbehaves on request.

``write_main(folder)`` writes a ``main.py`` that runs it; point a self-start backend's StartScript
at that file. Its own flags go in the backend's ExtraArgs:

- ``--fake-fault F``: a fault of the fake server (``hang``, ``garbage``, ``close``,
  ``crash_after=N``, ``slow_object_info=S``);
- ``--fake-startup S``: wait S seconds before listening (as ComfyUI's ~10 s of init);
- ``--fake-exit CODE``: write ``--fake-message`` lines to stderr and exit before listening;
- ``--fake-ignore SIGNAL``: ignore SIGINT or SIGTERM (may repeat), to test the stop sequence;
- ``--fake-child``: start a grandchild process that sleeps, to test that the whole tree goes.

At start it prints one stdout line ``FAKE-LAUNCH <json>`` with its argv, working folder, GPU
variables, its pid, its grandchild's pid and whether SIGINT was ignored when it started.
On SIGINT it prints ``Stopped server`` and exits, as ComfyUI does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swarmkeeper_doubles.fake_comfyui import parse_fault, run_fake_comfyui

MAIN_TEXT = "from swarmkeeper_doubles.fake_comfyui_script import main\n\nmain()\n"
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")


def write_main(folder: Path, name: str = "main.py") -> Path:
    """A ``main.py`` in ``folder`` that runs this stand-in."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(MAIN_TEXT)
    return path


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--fake-fault", action="append", default=[])
    parser.add_argument("--fake-startup", type=float, default=0.0)
    parser.add_argument("--fake-exit", type=int, default=None)
    parser.add_argument("--fake-message", action="append", default=[])
    parser.add_argument("--fake-ignore", action="append", default=[], choices=["SIGINT", "SIGTERM"])
    parser.add_argument("--fake-child", action="store_true")
    args, _ = parser.parse_known_args(argv)
    return args


def start_grandchild() -> int:
    """A process of our own that outlives nothing by itself: it sleeps until killed."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return sleeper.pid


def report(args: argparse.Namespace, grandchild: int | None, sigint_ignored: bool) -> None:
    record: dict[str, Any] = {
        "argv": sys.argv, "cwd": os.getcwd(), "pid": os.getpid(), "grandchild": grandchild,
        "sigint_ignored_at_start": sigint_ignored, "executable": sys.executable,
        "env": {name: os.environ.get(name) for name in GPU_VARIABLES},
    }
    print("FAKE-LAUNCH " + json.dumps(record), flush=True)


async def serve(args: argparse.Namespace) -> None:
    fields: dict[str, Any] = {"job_seconds": 0.02}
    for text in args.fake_fault:
        fields |= parse_fault(text)
    async with run_fake_comfyui(port=args.port, host=args.listen, **fields) as fake:
        fake.engine.on_crash = lambda: os._exit(1)
        print(f"To see the GUI go to: {fake.url}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for name in args.fake_ignore:
        signal.signal(signal.Signals[name], signal.SIG_IGN)
    grandchild = start_grandchild() if args.fake_child else None
    report(args, grandchild, sigint_ignored)
    print("Starting server", file=sys.stderr, flush=True)
    if args.fake_exit is not None:
        for line in args.fake_message:
            print(line, file=sys.stderr, flush=True)
        raise SystemExit(args.fake_exit)
    time.sleep(args.fake_startup)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        print("Stopped server", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
