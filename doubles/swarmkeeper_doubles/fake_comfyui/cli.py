"""The command line: ``python -m swarmkeeper_doubles.fake_comfyui --port N [...]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from swarmkeeper_doubles.fake_comfyui.options import FakeOptions, parse_fault
from swarmkeeper_doubles.fake_comfyui.server import FakeComfyUI

DESCRIPTION = "A fake ComfyUI server for tests: real HTTP and websockets on loopback, answering as ComfyUI does."


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m swarmkeeper_doubles.fake_comfyui", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--job-seconds", type=float, default=0.1, help="sleep per prompt (default 0.1)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        help="hang | garbage | close | crash_after=N | slow_object_info[=S]; may be repeated",
    )
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> FakeOptions:
    fields: dict[str, Any] = {"job_seconds": args.job_seconds}
    for text in args.fault:
        fields |= parse_fault(text)
    return FakeOptions(**fields)


async def serve_forever(options: FakeOptions, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM; a crash fault exits the process with code 1."""
    fake = FakeComfyUI(options, host=host, port=port)
    fake.engine.on_crash = lambda: os._exit(1)
    await fake.start()
    print(f"fake ComfyUI on {fake.url}", file=sys.stderr, flush=True)
    try:
        await fake.tasks[0]
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m swarmkeeper_doubles.fake_comfyui --port N ...``"""
    args = parse_args(argv)
    try:
        options = options_from(args)
    except ValueError as exc:
        raise SystemExit(f"fake_comfyui: {exc}") from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(options, args.host, args.port))
