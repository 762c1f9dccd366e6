"""``swarmkeeper backends toggle|restart|free|logs``: acting on running backends."""

from __future__ import annotations

import asyncio
from typing import Any

from swarmkeeper.cli_client.backend_edits import backend_entry
from swarmkeeper.cli_client.context import Context, ExitCode, Refused, UsageError
from swarmkeeper.cli_client.logs import LogReader, LogRequest
from swarmkeeper.types import JSONObject

ON = ("on", "true", "enable", "enabled", "yes")
OFF = ("off", "false", "disable", "disabled", "no")
RESTARTABLE = ("running", "errored")


def selector(text: str) -> str:
    """``all`` or a backend id, as RestartBackends and FreeBackendMemory take them (the server
    counts an id it does not know as nothing, so a typo is caught here)."""
    text = text.strip()
    if text.lower() == "all":
        return "all"
    try:
        return str(int(text))
    except ValueError:
        raise UsageError(f"expected a backend id or 'all', not '{text}'") from None


async def toggle_backend(context: Context) -> int:
    state = context.args.state.lower()
    if state not in ON + OFF:
        raise UsageError(f"toggle takes on or off, not '{context.args.state}'")
    answer = await context.call("ToggleBackend", backend_id=context.args.id, enabled=state in ON)
    if context.json:
        context.print_json(answer)
    else:
        context.print(f"Backend #{context.args.id}: {answer.get('result')}")
    return ExitCode.OK


async def restart_backends(context: Context) -> int:
    target = selector(context.args.target)
    answer = await context.call("RestartBackends", backend=target, force=context.args.force)
    count = answer.get("count", 0)
    if context.json:
        context.print_json(answer)
    else:
        context.print(f"Restarted {count} backend{'' if count == 1 else 's'}.")
    if target != "all" and not count:
        entry = await backend_entry(context, int(target))
        raise Refused(f"backend #{target} was not restarted: it is {entry.get('status')} (only running or errored "
                      "backends restart; --force restarts one in any status)")
    return ExitCode.OK


async def free_memory(context: Context) -> int:
    target = selector(context.args.target)
    answer = await context.call("FreeBackendMemory", backend=target, system_ram=context.args.system_ram)
    count = answer.get("count", 0)
    if context.json:
        context.print_json(answer)
    elif not answer.get("result"):
        context.print("No running backend to free.")
    else:
        context.print(f"Freed memory on {count} backend{'' if count == 1 else 's'}.")
    if target != "all" and not count:
        raise Refused(f"backend #{target} did not free memory (it is not running, or cannot free memory)")
    return ExitCode.OK


async def show_logs(context: Context) -> int:
    """The backend's recent log lines; with --follow, new lines as they come, until Ctrl-C. Text
    is read as ``swarmkeeper logs`` reads it (backend_logs.LogReader); --json prints the API's
    answer, or with --follow one JSON object per line."""
    args = context.args
    if not context.json:
        reader = LogReader(context.client, LogRequest(backend_id=args.id), context.out)
        await reader.poll(max(args.lines, 0))
        while args.follow:
            await asyncio.sleep(args.interval)
            await reader.poll()
        return ExitCode.OK
    name = f"backend-{args.id}"
    answer = await context.call("ListRecentLogMessages", types=[name])
    if not args.follow:
        context.print_json(answer)
        return ExitCode.OK
    last = 0
    while True:
        for line in _lines(answer, name):
            context.print_json_line(line)
            last = max(last, line.get("sequence_id", 0))
        await asyncio.sleep(args.interval)
        answer = await context.call("ListRecentLogMessages", types=[name], last_sequence_ids={name: last})


def _lines(answer: JSONObject, name: str) -> list[dict[str, Any]]:
    data = answer.get("data")
    found = data.get(name) if isinstance(data, dict) else None
    return [line for line in found or [] if isinstance(line, dict) and isinstance(line.get("sequence_id"), int)]
