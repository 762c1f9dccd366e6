"""An OpenAPI 3.1 document of the API, built from the route table.

Each ``POST /API/<Route>`` is an operation whose JSON body holds the route's parameters (typed as
JSON Schema, their .NET type in ``x-dotnet-type``), tagged with its page, with its permission flag
in ``x-permission``. The answers are SwarmUI's: 200 with the result or a route-level
``{"error"}``, 400 and 401 with ``{"error_id", "error"}`` (and the global gate's plain-text 401).
A parameter of the raw-body kind (``JObject``) means the route reads other keys of the body: the
body then allows any key, and the parameter's description names them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from swarmkeeper import __version__
from swarmkeeper.api.permissions import PUBLIC
from swarmkeeper.api.routes import Param, ParamType, Route
from swarmkeeper.apidocs.common import example_of, page_description, pages
from swarmkeeper.types import JSONObject

OPENAPI_VERSION = "3.1.0"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

_TYPES: dict[ParamType, JSONObject] = {
    ParamType.INT32: {"type": "integer", "format": "int32", "minimum": INT32[0], "maximum": INT32[1]},
    ParamType.INT64: {"type": "integer", "format": "int64", "minimum": INT64[0], "maximum": INT64[1]},
    ParamType.BOOLEAN: {"type": "boolean"},
    ParamType.STRING: {"type": "string"},
    ParamType.DOUBLE: {"type": "number", "format": "double"},
}

ERROR_SCHEMA: JSONObject = {
    "type": "object", "required": ["error_id", "error"],
    "properties": {"error_id": {"type": "string"}, "error": {"type": "string"}},
}
SESSION_HEADER: JSONObject = {
    "name": "X-Session-ID", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "The session id, when the body has no session_id (the body's wins).",
}
INFO_DESCRIPTION = (
    "SwarmUI's API as swarmkeeper serves it. Every route is POST /API/<Route> with a JSON object body. "
    "Get a session from GetNewSession first and send it as the body's session_id (or the X-Session-ID "
    "header, or authenticate with an API key as 'Authorization: Bearer <key>'). A route-level refusal is "
    "HTTP 200 {\"error\": \"...\"}; framework refusals are HTTP 400 {\"error_id\", \"error\"} (401 for an "
    "invalid session or API key).")


def param_schema(param: Param) -> JSONObject:
    schema: JSONObject = {**_TYPES[param.type], "x-dotnet-type": str(param.type)}
    if param.description:
        schema["description"] = param.description
    if not param.required and isinstance(param.default, bool | int | float | str):
        schema["default"] = param.default
    return schema


def body_schema(route: Route) -> JSONObject:
    properties: JSONObject = {}
    if route.needs_session:
        properties["session_id"] = {"type": "string", "description": "The session id from GetNewSession."}
    raw_notes = []
    for param in route.params:
        if param.type is ParamType.RAW:
            raw_notes.append(f"{param.name} (the whole body): {param.description}".strip())
        else:
            properties[param.name] = param_schema(param)
    schema: JSONObject = {"type": "object", "properties": properties, "additionalProperties": True}
    required = [param.name for param in route.params if param.required and param.type is not ParamType.RAW]
    if required:
        schema["required"] = required
    if raw_notes:
        schema["description"] = " ".join(raw_notes)
    return schema


def permission_of(route: Route) -> JSONObject:
    flag = route.flag
    return {"id": flag.id, "name": flag.display_name, "group": flag.group.display_name, "public": flag is PUBLIC}


def responses_of(route: Route) -> JSONObject:
    ok: JSONObject = {"schema": {"type": "object"}}
    example = example_of(route)
    if isinstance(example, dict):
        ok["example"] = example
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/TransportError"}}}
    return {
        "200": {"description": "The answer, or a route-level refusal {\"error\": \"...\"}.",
                "content": {"application/json": ok}},
        "400": {"description": "A framework refusal (basic_api, bad_route, bad_permissions, internal_error, ...).",
                "content": error},
        "401": {"description": "invalid_session_id or invalid_api_key; or the global gate's plain-text "
                               "'Unauthorized' (Network.RequiredAuthorization).",
                "content": {**error, "text/plain": {"schema": {"type": "string"}}}},
    }


def operation_of(route: Route, tag: str) -> JSONObject:
    summary, _, _ = route.description.partition("\n")
    operation: JSONObject = {
        "operationId": route.name, "tags": [tag], "summary": summary, "description": route.description,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema(route)}}},
        "responses": responses_of(route), "x-permission": permission_of(route), "x-user-update": route.user_update,
    }
    if route.needs_session:
        operation["parameters"] = [SESSION_HEADER]
    return operation


def _json_get(summary: str, *codes: str, content_type: str = "application/json") -> JSONObject:
    responses = {code: {"description": summary, "content": {content_type: {"schema": {
        "type": "object" if content_type == "application/json" else "string"}}}} for code in codes}
    return {"get": {"operationId": summary.split(":")[0], "tags": ["Operations"], "summary": summary,
                    "responses": responses}}


#: The server's other HTTP endpoints, listed when the running app has them.
OPERATIONS: dict[str, JSONObject] = {
    "/metrics": _json_get("Metrics: Prometheus text format (OpenMetrics when asked). With accounts on: a "
                          "credential holding view_logs (401 without one, 403 without the permission), unless "
                          "--public_metrics.", "200", content_type="text/plain"),
    "/health/live": _json_get("Liveness: 200 while the process answers.", "200"),
    "/health/ready": _json_get("Readiness: 200 when a backend is running (or as configured), else 503. The reason "
                               "and backend counts only for a caller holding view_backends_list.", "200", "503"),
    "/openapi.json": _json_get("OpenAPI: this document. With accounts on: any credential (401 without one).",
                               "200"),
}


def openapi_document(routes: Iterable[Route], http_paths: Collection[str] = ()) -> JSONObject:
    """The document for these routes, plus the operational endpoints among ``http_paths``."""
    paths: JSONObject = {}
    tags: list[JSONObject] = []
    for page, members in pages(routes).items():
        tags.append({"name": page, "description": page_description(members)})
        for route in members:
            if not route.websocket:  # a websocket route has no place in OpenAPI; the Markdown lists it
                paths[f"/API/{route.name}"] = {"post": operation_of(route, page)}
    for path, item in OPERATIONS.items():
        if path in http_paths:
            paths[path] = item
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "swarmkeeper", "version": __version__, "description": INFO_DESCRIPTION},
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": {"TransportError": ERROR_SCHEMA},
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "A swarmkeeper API key (swarmkeeper keys create)."}},
        },
    }
