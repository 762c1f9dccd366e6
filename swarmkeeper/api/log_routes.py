"""Reading the server's and the backends' recent log lines (SwarmUI's AdminAPI log routes).

A backend's lines (its process's output included) are kept under ``backend-<id>``, the name
SwarmUI's web UI looks for behind its "View Logs" button.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from swarmkeeper.api.permissions import VIEW_LOGS
from swarmkeeper.api.routes import APICall, RawInput, RouteTable
from swarmkeeper.exceptions import APIError
from swarmkeeper.logs import LogStore
from swarmkeeper.types import JSONObject

routes = RouteTable()


def _color(identifier: str) -> str:
    return "#88aaff" if identifier.startswith("backend-") else "#a0a0a0"


def log_types(store: LogStore) -> list[JSONObject]:
    return [{"name": name, "color": _color(name), "identifier": name} for name in store.identifiers()]


def _line(line: Any) -> JSONObject:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(line.time)) + f".{int(line.time % 1 * 1000):03d}"
    return {"sequence_id": line.sequence, "time": stamp, "level": line.level, "message": line.message}


@routes.route("ListLogTypes", flag=VIEW_LOGS, user_update=False, returns="""
    "types_available": [{"name": "backend-0", "color": "#88aaff", "identifier": "backend-0"}]
""")
async def list_log_types(call: APICall) -> JSONObject:
    """Returns a list of the available log types: 'Server', and 'backend-<id>' per backend that logged."""
    return {"types_available": log_types(call.services.logs)}


@routes.route("ListRecentLogMessages", flag=VIEW_LOGS, user_update=False, returns="""
    "types_available": [...], "last_sequence_id": 123,
    "data": {"backend-0": [{"sequence_id": 123, "time": "yyyy-MM-dd HH:mm:ss.fff", "level": "Info",
                           "message": "..."}]}
""")
async def list_recent_log_messages(
    call: APICall,
    raw: Annotated[RawInput, "Send 'types': ['backend-0', ...] and optionally 'last_sequence_ids': "
                             "{'backend-0': 123} to get only newer lines."],
) -> JSONObject:
    """Returns recent log lines of the asked types."""
    types = raw.get("types")
    since = raw.get("last_sequence_ids") or {}
    if not isinstance(types, list) or not all(isinstance(name, str) for name in types):
        raise APIError("Send 'types' as a list of log type names (see ListLogTypes).")
    if not isinstance(since, dict):
        raise APIError("'last_sequence_ids' must be an object of log type name to sequence id.")
    store = call.services.logs
    data: dict[str, list[JSONObject]] = {}
    for name in types:
        after = since.get(name, 0)
        after = after if isinstance(after, int) and not isinstance(after, bool) else 0
        data[name] = [_line(line) for line in store.recent(name, after)]
    last = max((line["sequence_id"] for lines in data.values() for line in lines), default=0)
    return {"types_available": log_types(store), "last_sequence_id": last, "data": data}
