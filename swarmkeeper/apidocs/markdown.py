"""Markdown pages of the API in the style of SwarmUI's ``docs/APIRoutes/*.md``: per route its
description, permission flag, parameter table (name, .NET type, description, default) and return
format; one page per declaring module, and a README.md that indexes them."""

from __future__ import annotations

from collections.abc import Iterable

from swarmkeeper.api.permissions import PUBLIC
from swarmkeeper.api.routes import Param, ParamType, Route
from swarmkeeper.apidocs.common import page_description, pages

GENERATED_NOTE = "<!-- Generated from the route table by scripts/gen-api-docs: do not edit by hand. -->"
REQUIRED = "**(REQUIRED)**"


def route_kind(route: Route) -> str:
    return "WebSocket Route" if route.websocket else "HTTP Route"


def anchor(route: Route) -> str:
    """The heading's anchor as GitHub makes it (lower case, punctuation dropped)."""
    return f"{route_kind(route).lower().replace(' ', '-')}-api{route.name.lower()}"


def cell(text: str) -> str:
    """Text safe inside a table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def default_text(param: Param) -> str:
    if param.required:
        return REQUIRED
    value = param.default
    if isinstance(value, bool):
        return f"`{value}`"  # SwarmUI's docs show .NET's True/False
    if value == "":
        return '`""`'
    return f"`{cell(str(value))}`"


def flag_text(route: Route) -> str:
    if route.flag is PUBLIC:
        return "(none: anyone may call it, without a session)"
    flag = route.flag
    return f"`{flag.id}` - `{flag.display_name}` in group `{flag.group.display_name}`"


def parameters_text(route: Route) -> list[str]:
    if not route.params:
        return ["**None.**"]
    lines = ["| Name | Type | Description | Default |", "| --- | --- | --- | --- |"]
    for param in route.params:
        description = param.description
        if param.type is ParamType.RAW:
            description = f"(the whole request body) {description}".strip()
        lines.append(f"| {param.name} | {param.type} | {cell(description)} | {default_text(param)} |")
    return lines


def returns_text(route: Route) -> list[str]:
    body = route.returns.strip() or "(nothing documented)"
    return ["```js", *("    " + line if line else "" for line in body.split("\n")), "```"]


def route_section(route: Route) -> list[str]:
    lines = [f"## {route_kind(route)} /API/{route.name}", "", "#### Description", "",
             route.description or "(No description.)", "", "#### Permission Flag", "", flag_text(route), ""]
    if not route.needs_session and route.flag is not PUBLIC:
        lines += ["Needs no session.", ""]
    lines += ["#### Parameters", "", *parameters_text(route), "", "#### Return Format", "", *returns_text(route), ""]
    return lines


def render_page(page: str, routes: list[Route]) -> str:
    lines = [GENERATED_NOTE, "", f"# swarmkeeper API Documentation - {page}", "",
             "> This is a subset of the API docs, see [README.md](README.md) for general info.", ""]
    description = page_description(routes)
    if description:
        lines += [description, ""]
    lines += ["#### Table of Contents:", ""]
    lines += [f"- {route_kind(route)} [{route.name}](#{anchor(route)})" for route in routes]
    lines.append("")
    for route in routes:
        lines += route_section(route)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_index(grouped: dict[str, list[Route]]) -> str:
    lines = [GENERATED_NOTE, "", "# swarmkeeper API Documentation", "",
             "Every route is `POST /API/<Route>` with a JSON object body, exactly as SwarmUI's. Call "
             "`GetNewSession` first, then send its `session_id` in the body of every other call (or as the "
             "`X-Session-ID` header; or authenticate with an API key as `Authorization: Bearer <key>`).", "",
             "A route-level refusal is HTTP 200 `{\"error\": \"...\"}`: check for an `error` key on every answer. "
             "Framework refusals are HTTP 400 `{\"error_id\": ..., \"error\": ...}` (`basic_api`, `bad_route`, "
             "`bad_permissions`, `internal_error`), and HTTP 401 for `invalid_session_id` (get a new session "
             "and retry) or `invalid_api_key`.", "",
             "Parameter types are .NET's names, as SwarmUI's error texts use them: `String`, `Int32`, `Int64`, "
             "`Boolean`, `Double`; `JObject` means the route reads other keys of the whole body. A running server "
             "also serves this reference as OpenAPI at `GET /openapi.json`.", "", "#### Pages:", ""]
    for page, routes in grouped.items():
        names = ", ".join(route.name for route in routes)
        lines.append(f"- [{page}]({page}.md): {names}")
    return "\n".join(lines) + "\n"


def render_pages(routes: Iterable[Route]) -> dict[str, str]:
    """File name → content, for every page and the index."""
    grouped = pages(routes)
    rendered = {f"{page}.md": render_page(page, members) for page, members in grouped.items()}
    rendered["README.md"] = render_index(grouped)
    return rendered
