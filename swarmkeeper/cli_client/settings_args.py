"""``--set Name=value`` arguments, checked against the backend type's declared settings before
anything is sent: the API silently ignores a setting name it does not know, so a typo would
otherwise change nothing and say nothing."""

from __future__ import annotations

from collections.abc import Sequence

from swarmkeeper.cli_client.context import Context, UsageError
from swarmkeeper.types import JSONObject


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["Address=http://x", "GPU_ID=1"]`` → ``{"Address": "http://x", "GPU_ID": "1"}`` (values are
    sent as text, as the web UI sends them; the server parses them by the setting's type)."""
    settings: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--set takes Name=value, not '{item}'")
        settings[name.strip()] = value
    return settings


async def type_description(context: Context, type_id: str) -> JSONObject | None:
    """The type as ListBackendTypes describes it, or None if the server has no such type."""
    answer = await context.call("ListBackendTypes")
    listed = answer.get("list")
    types = listed if isinstance(listed, list) else []
    return next((entry for entry in types if isinstance(entry, dict) and entry.get("id") == type_id), None)


def check_names(settings: dict[str, str], description: JSONObject) -> None:
    declared = [entry.get("name") for entry in description.get("settings") or [] if isinstance(entry, dict)]
    unknown = [name for name in settings if name not in declared]
    if unknown:
        raise UsageError(f"type {description.get('id')} has no setting {', '.join(repr(n) for n in unknown)}; "
                         f"its settings are: {', '.join(str(name) for name in declared)}")
