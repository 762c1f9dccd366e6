"""Fuzzing the whole HTTP surface from the server's own /openapi.json with schemathesis: every route,
valid and invalid bodies (``SWARMKEEPER_FUZZ_EXAMPLES`` per operation, default 70, so a
few thousand cases in all), against a server process with the dummy backends loaded.

Every answer must be documented (200, or SwarmUI's 400/401 framework errors), JSON where the
document says so, never a 5xx, never a traceback, and never the ``internal_error`` that means an
exception escaped a handler. The raw-body parts the document cannot type (EditBackend's
``settings``, ListRecentLogMessages' ``types``) get targeted property tests of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from swarmkeeper.apidocs.openapi import OPERATIONS
from swarmkeeper.app import FEATURES, api_routes
from tests.servers import ServerProcess

EXAMPLES = int(os.environ.get("SWARMKEEPER_FUZZ_EXAMPLES", "70"))
#: Routes fuzzing cannot call: ShutdownServer would stop the server under test (test_server_routes.py has it).
NOT_FUZZED = {"/API/ShutdownServer"}
POST_PATHS = [f"/API/{route.name}" for route in api_routes(FEATURES)
              if not route.websocket and f"/API/{route.name}" not in NOT_FUZZED]
GET_PATHS = list(OPERATIONS)
UNHANDLED = "An internal error occurred"
#: Paths whose documented answers include a 5xx: the readiness probe's 503.
DOCUMENTED_5XX = {"/health/ready"}
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                                               max_size=4),
                           max_leaves=12)


@schemathesis.check
def no_traceback(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    """No answer shows a traceback, and none is the internal_error of an exception that escaped."""
    text = response.text or ""
    assert "Traceback (most recent call last)" not in text, "the answer shows a traceback"
    assert UNHANDLED not in text, "an exception escaped a handler (internal_error)"
    return True


@dataclass
class FuzzTarget:
    server: ServerProcess
    schema: Any
    session_id: str = ""
    answers: dict[int, int] = field(default_factory=dict)
    #: The routes fuzzed through this target (with pytest-xdist, a worker runs only some of them).
    fuzzed: set[str] = field(default_factory=set)

    def renew(self) -> None:
        self.session_id = httpx.post(f"{self.server.url}/API/GetNewSession", json={}).json()["session_id"]

    def send(self, case: schemathesis.Case, http: requests.Session) -> schemathesis.Response:
        if isinstance(case.body, dict) and isinstance(case.body.get("session_id"), str):
            del case.body["session_id"]  # a made-up session only ever gets 401: use ours (the header)
        response = case.call(base_url=self.server.url, session=http, headers={"X-Session-ID": self.session_id})
        self.answers[response.status_code] = self.answers.get(response.status_code, 0) + 1
        if response.status_code == 401 and "invalid_session_id" in (response.text or ""):
            self.renew()  # a fuzzed Logout ended our session: go on with a new one
        return response


def populate(url: str) -> None:
    """A few backends for the handlers to act on: running, failing, unconfigured."""
    session = httpx.post(f"{url}/API/GetNewSession", json={}).json()["session_id"]
    for settings_ in ({"Address": "a"}, {"Address": "b", "Mode": "fail"}, {}):
        added = httpx.post(f"{url}/API/AddNewBackend", json={"session_id": session, "type_id": "swarmkeeper_dummy"})
        httpx.post(f"{url}/API/EditBackend", json={"session_id": session, "backend_id": added.json()["id"],
                                                   "title": "", "settings": settings_})


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "Data"
    server = ServerProcess(data_dir, "--loglevel", "Warning").start()
    try:
        populate(server.url)
        fuzz = FuzzTarget(server, schemathesis.openapi.from_url(f"{server.url}/openapi.json"))
        fuzz.renew()
        yield fuzz
    finally:
        server.stop()
    assert "Traceback" not in server.output(), "the server logged an unexpected exception"
    sent = sum(fuzz.answers.values())
    print(f"\nschemathesis sent {sent} cases; answers by status: {dict(sorted(fuzz.answers.items()))}")
    routes = len(fuzz.fuzzed & set(POST_PATHS))
    assert sent >= routes * EXAMPLES // 2, "far fewer cases than asked for were generated"


def fuzz(target: FuzzTarget, path: str, method: str) -> None:
    target.fuzzed.add(path)
    operation = target.schema[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance, no_traceback]
    if path not in DOCUMENTED_5XX:
        checks.append(not_a_server_error)
    with requests.Session() as http:

        @FUZZ_SETTINGS
        @given(case=strategy)
        def one_case(case: schemathesis.Case) -> None:
            case.validate_response(target.send(case, http), checks=checks)

        one_case()


def test_the_served_document_lists_every_route(target: FuzzTarget) -> None:
    served = {path for path in target.schema.raw_schema["paths"]}
    assert served == set(POST_PATHS) | NOT_FUZZED | set(GET_PATHS)


@pytest.mark.parametrize("path", POST_PATHS)
def test_api_route(target: FuzzTarget, path: str) -> None:
    fuzz(target, path, "POST")


@pytest.mark.parametrize("path", GET_PATHS)
def test_operational_endpoint(target: FuzzTarget, path: str) -> None:
    fuzz(target, path, "GET")


def test_edit_backend_settings_of_any_shape(target: FuzzTarget) -> None:
    names = st.sampled_from(["Address", "Token", "OverQueue", "Ratio", "Flag", "Mode", "InitSeconds", "Nope"])
    bodies = st.fixed_dictionaries({"backend_id": st.sampled_from([0, 1, 2, 9]), "title": JSON_VALUES,
                                    "settings": st.dictionaries(names, JSON_VALUES, max_size=5) | JSON_VALUES})
    with httpx.Client(base_url=target.server.url, timeout=30) as http:

        @FUZZ_SETTINGS
        @given(body=bodies)
        def one_body(body: dict[str, Any]) -> None:
            body = {**body, "settings": {**body["settings"], "Mode": "ok"} if isinstance(body["settings"], dict)
                    else body["settings"]}  # never 'hang': a hung init would only slow the run
            response = http.post("/API/EditBackend", json={**body, "session_id": target.session_id})
            assert_clean(response)
            data = response.json()
            assert response.status_code == 200 and (set(data) == {"error"} or data["id"] == body["backend_id"])

        one_body()


def test_log_messages_with_any_types(target: FuzzTarget) -> None:
    bodies = st.fixed_dictionaries({}, optional={"types": JSON_VALUES, "last_sequence_ids": JSON_VALUES})
    with httpx.Client(base_url=target.server.url, timeout=30) as http:

        @FUZZ_SETTINGS
        @given(body=bodies)
        def one_body(body: dict[str, Any]) -> None:
            response = http.post("/API/ListRecentLogMessages", json={**body, "session_id": target.session_id})
            assert_clean(response)
            assert response.status_code == 200

        one_body()


def test_bodies_that_are_not_json_objects(target: FuzzTarget) -> None:
    raw = st.binary(max_size=64) | JSON_VALUES.map(lambda value: httpx.Request("POST", "/", json=value).content)
    with httpx.Client(base_url=target.server.url, timeout=30) as http:

        @FUZZ_SETTINGS
        @given(route=st.sampled_from(POST_PATHS), body=raw)
        def one_body(route: str, body: bytes) -> None:
            response = http.post(route, content=body or b" ", headers={"Content-Type": "application/json",
                                                                        "X-Session-ID": target.session_id})
            assert response.status_code in (200, 400, 401)
            assert set(response.json()) <= {"error", "error_id"} or response.status_code == 200
            assert "Traceback" not in response.text

        one_body()


def assert_clean(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text and UNHANDLED not in response.text, response.text
