"""Swarm-API backends between real servers, each its own process (``python -m swarmkeeper serve``)
on loopback: a remote that stops and comes back, loops refused (A → A, A → B → A), a remote that
requires an Authorization header (and the secret never shown), and three servers in a chain with
AllowForwarding on and off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts_support import write_settings
from tests.servers import APIClient, ServerProcess
from tests.swarm_support import add_backend, add_swarm, api_at, children, listing, wait_children, wait_parent

RIGHT = "Bearer right-token-8c1f"
WRONG = "Bearer WRONG-secret-4711"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, ServerProcess]]:
    """Up to three server processes, A, B and C, started as a test needs them."""
    started: dict[str, ServerProcess] = {}

    class Started(dict[str, ServerProcess]):
        def __missing__(self, name: str) -> ServerProcess:
            self[name] = started[name] = ServerProcess(tmp_path / name).start()
            return self[name]

    try:
        yield Started()
    finally:
        for server in started.values():
            server.stop()


async def secretless(api: APIClient, secret: str) -> None:
    """The secret is nowhere in the server's answers: backends (full data) and every log line."""
    raw = (await api.call("ListBackends", nonreal=True, full_data=True)).text
    assert secret not in raw
    types = [entry["name"] for entry in (await api.ok("ListLogTypes"))["types_available"]]
    logs = await api.ok("ListRecentLogMessages", types=types)
    assert secret not in json.dumps(logs)


async def server_id(api: APIClient) -> str:
    return str((await api.raw("GetNewSession")).json()["server_id"])


async def test_remote_that_stops_and_comes_back(servers: dict[str, ServerProcess]) -> None:
    b, a = servers["B"], servers["A"]
    async with api_at(b.url) as b_api, api_at(a.url) as a_api:
        gpu = await add_backend(b_api, "swarmkeeper_dummy", "b gpu", Address="dummy")
        await b_api.wait_status(gpu, "running")
        strict = await add_swarm(a_api, b.url, "strict", ConnectionAttemptTimeoutSeconds=5)
        lenient = await add_swarm(a_api, b.url, "lenient", AllowIdle=True, ConnectionAttemptTimeoutSeconds=5)
        await wait_children(a_api, strict, 1)
        await wait_children(a_api, lenient, 1)
        b.stop()
        entry = await wait_parent(a_api, strict, "errored", f"Cannot use the remote Swarm at {b.url}")
        assert "Connection refused" in entry["status_reason"]
        await wait_parent(a_api, lenient, "idle", "Connection refused")
        mirrored = children(await listing(a_api), lenient)
        assert [child["status"] for child in mirrored] == ["idle"]
        assert "cannot be used" in mirrored[0]["status_reason"]
        b.start()  # same port, same data folder: B's backend comes back on its own
        restarted = await server_id(b_api)
        for parent in (strict, lenient):
            await wait_parent(a_api, parent, "running")
            (child,) = await wait_children(a_api, parent, 1)
            assert child["remote_id"] == gpu and child["features"] == ["dummy"]
            assert child["remote_server_id"] == restarted and child["swarm_chain"] == [restarted]


async def test_loops_are_refused(servers: dict[str, ServerProcess]) -> None:
    a, b = servers["A"], servers["B"]
    async with api_at(a.url) as a_api, api_at(b.url) as b_api:
        itself = await add_swarm(a_api, a.url)
        await wait_parent(a_api, itself, "errored", "Swarm connected to itself, backend load failed.")
        assert children(await listing(a_api), itself) == []
        await add_backend(a_api, "swarmkeeper_dummy", "a gpu", Address="dummy")
        back = await add_swarm(b_api, a.url)
        await wait_children(b_api, back, 1)
        looped = await add_swarm(a_api, b.url)
        entry = await wait_parent(a_api, looped, "errored", "Swarm connection loop")
        assert f"(this server → {b.url} → this server)" in entry["status_reason"]
        assert children(await listing(a_api), looped) == []


async def test_remote_that_requires_authorization(servers: dict[str, ServerProcess], tmp_path: Path) -> None:
    write_settings(tmp_path / "B", network={"RequiredAuthorization": RIGHT, "AuthBypassIPs": ""})
    b = servers["B"] = ServerProcess(tmp_path / "B").start(headers={"Authorization": RIGHT})
    a = servers["A"]
    try:
        async with api_at(b.url, {"Authorization": RIGHT}) as b_api, api_at(a.url) as a_api:
            await add_backend(b_api, "swarmkeeper_dummy", "b gpu", Address="dummy")
            missing = await add_swarm(a_api, b.url, "no header")
            wrong = await add_swarm(a_api, b.url, "wrong header", AuthorizationHeader=WRONG, AllowIdle=True)
            await wait_parent(a_api, missing, "errored", "requires an Authorization header")
            entry = await wait_parent(a_api, wrong, "errored", "refused our Authorization header")
            assert "AuthorizationHeader" in entry["status_reason"] and entry["settings"]["AuthorizationHeader"] == \
                "\t<secret>"
            await secretless(a_api, WRONG)
            await a_api.ok("EditBackend", backend_id=wrong, title="right", settings={"AuthorizationHeader": RIGHT})
            await wait_children(a_api, wrong, 1)
            await secretless(a_api, RIGHT)
        assert WRONG not in a.output() and RIGHT not in a.output()
    finally:
        b.stop()


def _by_type(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {child["remote_type"]: child for child in found}


async def test_three_servers_in_a_chain(servers: dict[str, ServerProcess]) -> None:
    c, b, a = servers["C"], servers["B"], servers["A"]
    async with api_at(c.url) as c_api, api_at(b.url) as b_api, api_at(a.url) as a_api:
        c_id, b_id = await server_id(c_api), await server_id(b_api)
        await add_backend(c_api, "swarmkeeper_dummy", "c gpu", Address="dummy")
        await add_backend(b_api, "swarmkeeper_dummy", "b gpu", Address="dummy")
        b_parent = await add_swarm(b_api, c.url, "to C")
        await wait_children(b_api, b_parent, 1)
        forwarding = await add_swarm(a_api, b.url, "to B, forwarding")
        local_only = await add_swarm(a_api, b.url, "to B, local only", AllowForwarding=False)
        chained = _by_type(await wait_children(a_api, forwarding, 2))
        from_c = chained["swarmswarmbackend"]
        assert from_c["title"] == f"[Remote from {forwarding}: to B, forwarding] [Remote from {b_parent}: to C] c gpu"
        assert from_c["swarm_chain"] == [b_id, c_id] and from_c["features"] == ["dummy"]
        assert chained["swarmkeeper_dummy"]["title"].endswith("] b gpu")
        assert chained["swarmkeeper_dummy"]["swarm_chain"] == [b_id]
        only = await wait_children(a_api, local_only, 1)
        assert [(child["remote_type"], child["swarm_chain"]) for child in only] == [("swarmkeeper_dummy", [b_id])]
        entries = await listing(a_api)
        assert entries[str(forwarding)]["swarm_chain"] == [b_id, c_id]
        assert entries[str(local_only)]["swarm_chain"] == [b_id]
