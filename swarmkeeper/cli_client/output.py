"""Plain aligned text for people: tables, and one backend's details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swarmkeeper.types import SECRET_PLACEHOLDER, JSONObject

GAP = "  "


def clean(value: Any, limit: int = 0) -> str:
    """A value as one printable line, shortened to ``limit`` characters if given."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = ""
    else:
        text = str(value)
    text = "".join(c if c.isprintable() else " " for c in " ".join(text.split()))
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [[clean(header) for header in headers], *([clean(cell) for cell in row] for row in rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append(GAP.join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def uses(entry: JSONObject) -> str:
    return f"{entry.get('usages', 0)}/{entry.get('max_usages', 0)}"


def backend_rows(listing: JSONObject) -> list[list[Any]]:
    return [[key, entry.get("type"), entry.get("status"), entry.get("enabled"), clean(entry.get("title"), 30),
             uses(entry), entry.get("time_since_used"), clean(entry.get("status_reason"), 70)]
            for key, entry in listing.items() if isinstance(entry, dict)]


BACKEND_HEADERS = ["ID", "TYPE", "STATUS", "ENABLED", "TITLE", "USES", "LAST USED", "REASON"]


def shown_setting(value: Any) -> str:
    return "<secret>" if value == SECRET_PLACEHOLDER else clean(value)


def backend_detail(entry: JSONObject) -> str:
    """One backend, a field per line, its settings last (secrets stay masked as the API sends them)."""
    fields = [("title", entry.get("title")), ("status", entry.get("status")), ("reason", entry.get("status_reason")),
              ("enabled", entry.get("enabled")), ("uses", uses(entry)), ("last used", entry.get("time_since_used")),
              ("init attempts", entry.get("init_attempts")), ("modcount", entry.get("modcount"))]
    width = max(len(name) for name, _ in fields)
    lines = [f"Backend #{entry.get('id')} ({clean(entry.get('type'))})"]
    lines += [f"  {name.ljust(width)}  {clean(value)}" for name, value in fields if value is not None]
    settings = entry.get("settings")
    if isinstance(settings, dict) and settings:
        lines.append("  settings:")
        lines += [f"    {name} = {shown_setting(value)}" for name, value in settings.items()]
    return "\n".join(lines)
