"""How a client command runs: its connection flags, the client it talks through, where it writes,
and how every failure becomes one line on stderr and an exit code that means something."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TextIO, TypeAlias

from swarmkeeper.clients.errors import REFUSED_MESSAGE
from swarmkeeper.clients.swarm import (
    SwarmAPIError,
    SwarmAuthRefused,
    SwarmClient,
    SwarmError,
    SwarmProtocolError,
    SwarmUnreachable,
)

#: What ``add_subparsers()`` returns, where each command group adds its commands.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

DEFAULT_URL = "http://127.0.0.1:7801"
URL_ENV = "SWARMKEEPER_URL"
KEY_ENV = "SWARMKEEPER_API_KEY"


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1  # the server answered {"error": ...}, or what was asked for is not there
    USAGE = 2  # the command line is wrong (argparse uses 2 as well)
    UNREACHABLE = 3  # nothing answered at --url, or what answered is not a SwarmUI-style server


class UsageError(Exception):
    """The command line asks for something that cannot work; exit 2."""


class Refused(Exception):
    """The command could not do what was asked (the server said no, or the backend is not
    there); exit 1."""


def flag(parser: argparse.ArgumentParser, name: str, **options: Any) -> None:
    """SwarmUI spells flags with underscores (``--api_key``); hyphens work too."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, dest=name, **options)


def connection_flags(parser: argparse.ArgumentParser) -> None:
    flag(parser, "url", default=None, help=f"The server (default ${URL_ENV} or {DEFAULT_URL}).")
    flag(parser, "api_key", default=None, help=f"An API key, when accounts are on (default ${KEY_ENV}).")
    flag(parser, "timeout", type=float, default=30.0, help="Seconds to wait for each answer (default 30).")
    flag(parser, "json", action="store_true", help="Print the API's JSON answer instead of a table.")


@dataclass
class Context:
    """What a command sees: its arguments, the client, and its streams."""

    args: argparse.Namespace
    client: SwarmClient
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def print_json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, ensure_ascii=False), file=self.out)

    def print_json_line(self, data: Any) -> None:
        print(json.dumps(data, ensure_ascii=False), file=self.out, flush=True)

    async def call(self, route: str, **params: Any) -> dict[str, Any]:
        return await self.client.call(route, **params)


Command = Callable[[Context], Awaitable[int]]


def server_url(args: argparse.Namespace) -> str:
    return args.url or os.environ.get(URL_ENV) or DEFAULT_URL


def headers_for(args: argparse.Namespace) -> dict[str, str]:
    key = args.api_key if args.api_key is not None else os.environ.get(KEY_ENV, "")
    return {"Authorization": f"Bearer {key.strip()}"} if key and key.strip() else {}


def open_client(args: argparse.Namespace) -> SwarmClient:
    try:
        return SwarmClient(server_url(args), headers=headers_for(args), timeout=args.timeout)
    except ValueError as error:
        raise UsageError(f"--url: {error}") from None


async def execute(command: Command, args: argparse.Namespace, *, out: TextIO | None = None,
                  err: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """Run one command; every failure is one line on ``err`` and an exit code."""
    err = err or sys.stderr
    try:
        async with open_client(args) as client:
            context = Context(args, client, out or sys.stdout, err, stdin or sys.stdin)
            return await command(context)
    except (UsageError, Refused, SwarmError) as error:
        code, text = explain(error, server_url(args))
        print(f"swarmkeeper: {text}", file=err)
        return code


def explain(error: Exception, url: str) -> tuple[ExitCode, str]:
    """The exit code and message of a failure."""
    if isinstance(error, UsageError):
        return ExitCode.USAGE, str(error)
    if isinstance(error, Refused):
        return ExitCode.REFUSED, str(error)
    if isinstance(error, SwarmAPIError):
        suffix = f" ({error.error_id})" if error.error_id else ""
        return ExitCode.REFUSED, f"the server refused: {error.message}{suffix}"
    if isinstance(error, SwarmAuthRefused):
        return ExitCode.REFUSED, (f"{url} requires authorization (HTTP 401): pass an API key with --api_key or "
                                  f"${KEY_ENV}")
    if isinstance(error, SwarmUnreachable):
        reason = "connection refused (is 'swarmkeeper serve' running there?)" if error.message == REFUSED_MESSAGE \
            else error.message
        return ExitCode.UNREACHABLE, f"cannot reach {url}: {reason}"
    if isinstance(error, SwarmProtocolError):
        return ExitCode.UNREACHABLE, error.message
    return ExitCode.REFUSED, str(error)


@dataclass(frozen=True)
class Entry:
    """The ``run`` default argparse stores: runs the command on a fresh event loop."""

    command: Command

    def __call__(self, args: argparse.Namespace) -> int:
        try:
            return asyncio.run(execute(self.command, args))
        except KeyboardInterrupt:
            return 130
