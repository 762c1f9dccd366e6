"""``swarmkeeper logs <id>``: a backend's recent log lines (a self-started ComfyUI's output
included) read from a running server through its API (``ListRecentLogMessages``), printed as
``time [Level] message``; with ``follow`` it keeps polling for newer lines (``last_sequence_ids``).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from swarmkeeper.clients.swarm import SwarmAPIError, SwarmAuthRefused, SwarmClient, SwarmError

DEFAULT_URL = "http://127.0.0.1:7801"
URL_ENV = "SWARMKEEPER_URL"
KEY_ENV = "SWARMKEEPER_API_KEY"


@dataclass(frozen=True)
class LogRequest:
    backend_id: int
    url: str = DEFAULT_URL
    api_key: str | None = None
    follow: bool = False
    #: Print only the last N lines of what is already there (0: all of them).
    lines: int = 0
    #: Seconds between polls when following.
    interval: float = 1.0


def format_line(entry: Any) -> str | None:
    """``2026-11-23 01:02:03.456 [Debug] message``, or None for an entry that is not a log line."""
    if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
        return None
    return f"{entry.get('time', '')} [{entry.get('level', '')}] {entry['message']}"


class LogReader:
    """Reads one backend's lines, remembering the last sequence id it printed."""

    def __init__(self, client: SwarmClient, request: LogRequest, out: TextIO) -> None:
        self.client = client
        self.request = request
        self.out = out
        self.identifier = f"backend-{request.backend_id}"
        self.last = 0

    async def exists(self) -> bool:
        answer = await self.client.call("ListLogTypes")
        names = {t.get("identifier") for t in answer.get("types_available", []) if isinstance(t, dict)}
        return self.identifier in names

    async def poll(self, limit: int = 0) -> int:
        """Print the lines newer than the last one printed; how many were printed."""
        answer = await self.client.call("ListRecentLogMessages", types=[self.identifier],
                                        last_sequence_ids={self.identifier: self.last})
        data = answer.get("data")
        entries = data.get(self.identifier, []) if isinstance(data, dict) else []
        entries = [e for e in entries if isinstance(e, dict) and isinstance(e.get("sequence_id"), int)]
        for entry in entries:
            self.last = max(self.last, entry["sequence_id"])
        shown = [text for text in map(format_line, entries[-limit:] if limit else entries) if text is not None]
        for text in shown:
            print(text, file=self.out, flush=True)
        return len(shown)


async def no_lines(client: SwarmClient, request: LogRequest, err: TextIO) -> int:
    """Nothing logged under that id: 0 if the backend exists (it said nothing yet), else 1."""
    listing = await client.call("ListBackends", nonreal=True)
    if str(request.backend_id) in listing:
        print(f"swarmkeeper logs: backend {request.backend_id} has logged nothing yet", file=err)
        return 0
    print(f"swarmkeeper logs: there is no backend {request.backend_id} on {request.url} (ListBackends shows the "
          "ids)", file=err)
    return 1


async def print_logs(request: LogRequest, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Exit code: 0 done, 1 refused (or no such log), 3 the server cannot be reached."""
    headers = {"Authorization": f"Bearer {request.api_key}"} if request.api_key else None
    try:
        async with SwarmClient(request.url, headers=headers, timeout=30) as client:
            reader = LogReader(client, request, out)
            if not request.follow and not await reader.exists():
                return await no_lines(client, request, err)
            await reader.poll(request.lines)
            while request.follow:
                await asyncio.sleep(request.interval)
                await reader.poll()
    except ValueError as error:  # a --url that is not an http(s) address
        print(f"swarmkeeper logs: {error}", file=err)
        return 2
    except (SwarmAPIError, SwarmAuthRefused) as error:
        print(f"swarmkeeper logs: the server refused: {error}", file=err)
        return 1
    except SwarmError as error:
        print(f"swarmkeeper logs: {request.url}: {error}", file=err)
        return 3
    return 0
