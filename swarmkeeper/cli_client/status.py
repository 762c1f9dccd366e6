"""``swarmkeeper status``: the ``GetCurrentStatus`` picture (what SwarmUI's page shows at the top)."""

from __future__ import annotations

from swarmkeeper.cli_client.context import Context, Entry, ExitCode, Subcommands, connection_flags
from swarmkeeper.cli_client.output import clean
from swarmkeeper.types import JSONObject


def status_text(answer: JSONObject) -> str:
    backends = _mapping(answer.get("backend_status"))
    counts = _mapping(answer.get("status"))
    summary = clean(backends.get("status", "unknown"))
    if backends.get("message"):
        summary += f" - {clean(backends['message'])}"
    features = answer.get("supported_features") or []
    return "\n".join([
        f"Backends:    {summary}",
        f"Generations: {counts.get('live_gens', 0)} running, {counts.get('waiting_gens', 0)} waiting, "
        f"{counts.get('waiting_backends', 0)} waiting for a backend, {counts.get('loading_models', 0)} loading "
        "models",
        f"Features:    {', '.join(clean(feature) for feature in features) or '(none)'}",
    ])


def _mapping(value: object) -> JSONObject:
    return value if isinstance(value, dict) else {}


async def show_status(context: Context) -> int:
    answer = await context.call("GetCurrentStatus")
    if context.json:
        context.print_json(answer)
    else:
        context.print(status_text(answer))
    return ExitCode.OK


def status_parser(commands: Subcommands) -> None:
    status = commands.add_parser("status", help="Show a running server's status (GetCurrentStatus).",
                                 description="Show a running server's status: its backends' overall state, "
                                             "generations, and supported features.")
    connection_flags(status)
    status.set_defaults(run=Entry(show_status))
