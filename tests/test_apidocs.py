"""The API reference: docs/api/*.md and /openapi.json cover every route, parameter and permission
flag the server declares, and docs/api is regenerated whenever a route changes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import jsonschema_rs
import pytest

from swarmkeeper.api.permissions import EDIT_BACKENDS, PUBLIC, VIEW_BACKENDS_LIST
from swarmkeeper.api.routes import APICall, ParamType, Route, RouteTable
from swarmkeeper.apidocs.__main__ import DEFAULT_OUT, differences, write
from swarmkeeper.apidocs.common import example_of, page_of
from swarmkeeper.apidocs.markdown import render_pages
from swarmkeeper.apidocs.openapi import openapi_document
from swarmkeeper.app import FEATURES, api_routes
from swarmkeeper.types import JSONObject
from tests.servers import APIClient

ROUTES = list(api_routes(FEATURES))


def test_docs_api_is_up_to_date_with_the_route_table() -> None:
    problems = differences(DEFAULT_OUT)
    assert problems == [], "docs/api is out of date: run scripts/gen-api-docs\n" + "\n".join(problems)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_every_route_parameter_and_flag_is_on_its_page(route: Route) -> None:
    page = (DEFAULT_OUT / f"{page_of(route)}.md").read_text(encoding="utf-8")
    kind = "WebSocket Route" if route.websocket else "HTTP Route"
    section = page.split(f"## {kind} /API/{route.name}\n", 1)[1].split("\n## ", 1)[0]
    if route.flag is not PUBLIC:
        assert f"`{route.flag.id}` - `{route.flag.display_name}`" in section
    for param in route.params:
        assert re.search(rf"^\| {re.escape(param.name)} \| {param.type} \| ", section, re.M), param.name
    index = (DEFAULT_OUT / "README.md").read_text(encoding="utf-8")
    assert f"]({page_of(route)}.md)" in index and route.name in index


async def test_served_openapi_has_every_route_with_its_parameters_and_flag(app_client: APIClient) -> None:
    response = await app_client.http.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    for route in app_client.services.routes:
        if route.websocket:  # OpenAPI has no place for a websocket route (the Markdown lists it)
            assert f"/API/{route.name}" not in document["paths"]
            continue
        operation = document["paths"][f"/API/{route.name}"]["post"]
        assert operation["operationId"] == route.name
        assert operation["x-permission"]["id"] == route.flag.id
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        named = [param.name for param in route.params if param.type is not ParamType.RAW]
        assert set(named) <= set(body["properties"]), route.name
        assert set(body.get("required", [])) == {p.name for p in route.params if p.required and p.name in named}
        jsonschema_rs.validator_for(body)  # a valid JSON Schema
        example = operation["responses"]["200"]["content"]["application/json"].get("example")
        if example is not None:
            assert jsonschema_rs.is_valid({"type": "object"}, example)
    for path in ("/metrics", "/health/live", "/health/ready", "/openapi.json"):
        assert "get" in document["paths"][path]


def body_of(document: JSONObject, route: str) -> JSONObject:
    return document["paths"][f"/API/{route}"]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_parameter_types_defaults_and_ranges() -> None:
    document = openapi_document(ROUTES)
    edit = body_of(document, "EditBackend")
    assert edit["properties"]["backend_id"] == {
        "type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1, "x-dotnet-type": "Int32",
        "description": "ID of the backend to edit."}
    assert edit["properties"]["new_id"]["default"] == -1
    assert edit["required"] == ["backend_id", "title"]
    assert "raw_inp" not in edit["properties"] and "settings" in edit["description"]
    assert edit["additionalProperties"] is True
    system_ram = body_of(document, "FreeBackendMemory")["properties"]["system_ram"]
    assert system_ram["type"] == "boolean" and system_ram["default"] is False
    assert "session_id" not in body_of(document, "GetNewSession")["properties"]
    assert "parameters" not in document["paths"]["/API/GetNewSession"]["post"]


def test_pages_are_named_for_the_declaring_module() -> None:
    def route(module: str) -> Route:
        return Route(name="X", handler=_handler, flag=VIEW_BACKENDS_LIST, params=(), module=module)

    assert page_of(route("swarmkeeper.api.backend_routes")) == "BackendAPI"
    assert page_of(route("swarmkeeper.models.routes")) == "ModelsAPI"
    assert page_of(route("plugin.gpu_pool_api")) == "GpuPoolAPI"


def test_examples_parse_with_or_without_braces() -> None:
    def returning(text: str) -> Route:
        return Route(name="X", handler=_handler, flag=VIEW_BACKENDS_LIST, params=(), returns=text)

    assert example_of(returning('"result": true')) == {"result": True}
    assert example_of(returning('{"a": [1]}')) == {"a": [1]}
    assert example_of(returning('"list": [...]')) is None


async def _handler(call: APICall) -> JSONObject:
    return {}


def _extra_table() -> RouteTable:
    table = RouteTable()

    @table.route("FrobnicateBackend", flag=EDIT_BACKENDS, returns='"result": "Frobnicated."')
    async def frobnicate(call: APICall, backend_id: Annotated[int, "Which one."],
                         hard: Annotated[bool, "How hard."] = False) -> JSONObject:
        """Frobnicates a backend."""
        return {}

    return table


def test_a_new_route_or_parameter_makes_the_pages_out_of_date(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert write(tmp_path)  # a fresh folder: every page written
    assert differences(tmp_path) == []
    extended = [*ROUTES, *_extra_table()]
    monkeypatch.setattr("swarmkeeper.apidocs.__main__.expected_pages", lambda: render_pages(extended))
    assert "out of date: README.md" in differences(tmp_path)
    assert any(problem.endswith(f"{page_of(extended[-1])}.md") for problem in differences(tmp_path))
    write(tmp_path)
    page = (tmp_path / f"{page_of(extended[-1])}.md").read_text()
    assert "## HTTP Route /API/FrobnicateBackend" in page and "| hard | Boolean | How hard. | `False` |" in page
    assert "`edit_backends` - `Edit Backends` in group `Backends Admin`" in page
    assert differences(tmp_path) == []
    (tmp_path / "Stale.md").write_text((tmp_path / "README.md").read_text())
    assert differences(tmp_path) == ["no longer generated: Stale.md"]
    (tmp_path / "Notes.md").write_text("# hand-written, not ours\n")
    write(tmp_path)
    assert (tmp_path / "Notes.md").exists() and not (tmp_path / "Stale.md").exists()
