"""Bounded before trusted (docs/security.md, section 8): each test performs the attack on a real
server on loopback, over raw sockets where the attack lives below HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from swarmkeeper.app import create_app
from swarmkeeper.config import ServerConfig
from swarmkeeper.limits import WireLimits, server_config
from swarmkeeper.net import SWARM_KEEP_ALIVE_SECONDS
from swarmkeeper.services import Services
from tests.accounts_support import Accounted, write_settings
from tests.ports import free_port
from tests.servers import ROOT, APIClient, ServerProcess, test_config

MB = 1024 * 1024


@contextlib.asynccontextmanager
async def limited_server(config: ServerConfig) -> AsyncIterator[tuple[str, int, Services]]:
    """The app on loopback with uvicorn set up as ``swarmkeeper serve`` sets it up."""
    port = free_port()
    app = create_app(config)
    server = uvicorn.Server(server_config(app, config.wire, keep_alive=SWARM_KEEP_ALIVE_SECONDS, host="127.0.0.1",
                                          port=port, log_config=None, access_log=False, lifespan="on"))
    app.state.exiting = lambda: server.should_exit
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield "127.0.0.1", port, app.state.services
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def accounts_on_loopback(data_dir: Path, **wire: Any) -> AsyncIterator[tuple[int, Accounted]]:
    """Accounts on, no localhost bypass (so a loopback caller is a stranger), one user ``ann``."""
    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": False})
    config = test_config(data_dir, require_accounts=True, comfy_port=-1, wire=WireLimits(**wire))
    async with limited_server(config) as (host, port, services), \
            httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as http:
        server = Accounted(APIClient(http, services))
        await server.add_user("ann", "admin")
        yield port, server


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer with a Content-Length: status, headers, body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(head[0].split()[1]), headers, body


def api_head(route: str, length: int, **extra: str) -> bytes:
    lines = [f"POST /API/{route} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {length}", *(f"{name}: {value}" for name, value in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def padded_body(size: int, **fields: str) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    start = json.dumps({**fields, "pad": ""}).encode()
    return start[:-2] + b"x" * (size - len(start)) + b'"}'


async def test_an_anonymous_5mb_body_is_refused_before_it_is_read(data_dir: Path) -> None:
    async with accounts_on_loopback(data_dir) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(api_head("ListBackends", 5 * MB))
        writer.write(b"x" * 65536)  # of 5 MB declared: the server must not wait for the rest
        await writer.drain()
        status, headers, body = await read_answer(reader)
        assert status == 413 and headers["connection"] == "close"
        answer = json.loads(body)
        assert answer["error_id"] == "request_too_large" and "1 MB" in answer["error"], answer
        assert await reader.read() == b""  # and the connection ends: the rest is never read
        writer.close()


async def test_an_anonymous_small_body_is_read_as_usual(data_dir: Path) -> None:
    async with accounts_on_loopback(data_dir) as (_, server):
        response = await server.http.post("/API/ListBackends", content=padded_body(MB - 10, session_id="nope"),
                                          headers={"Content-Type": "application/json"})
        assert response.status_code == 401 and response.json()["error_id"] == "invalid_session_id"


async def test_a_session_in_the_body_is_not_known_before_the_body(data_dir: Path) -> None:
    async with accounts_on_loopback(data_dir) as (_, server):
        session = await server.session_for("ann")
        response = await server.http.post("/API/ListBackends", content=padded_body(5 * MB, session_id=session),
                                          headers={"Content-Type": "application/json"})
        assert response.status_code == 413 and response.json()["error_id"] == "request_too_large"


async def test_a_known_callers_larger_body_is_accepted(data_dir: Path) -> None:
    async with accounts_on_loopback(data_dir) as (_, server):
        key = await server.key_for("ann")
        session = await server.session_for("ann")
        token = await server.token_for("ann")
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-Session-Id": session},
                        {"Cookie": f"swarm_token={token}", "X-Session-Id": session}):
            body = padded_body(5 * MB, session_id=session) if "Cookie" in headers else padded_body(5 * MB)
            response = await server.http.post("/API/ListBackends", content=body,
                                              headers={"Content-Type": "application/json", **headers})
            assert response.status_code == 200 and response.json() == {}, (headers, response.text[:200])


async def test_the_full_cap_still_applies_to_a_known_caller(data_dir: Path) -> None:
    async with accounts_on_loopback(data_dir) as (port, server):
        key = await server.key_for("ann")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(api_head("ListBackends", 201 * MB, Authorization=f"Bearer {key}"))
        await writer.drain()
        status, _, body = await read_answer(reader)
        assert status == 400 and json.loads(body) == {"error_id": "basic_api", "error": "bad content length"}
        writer.close()


async def test_a_stalled_body_is_answered_408(data_dir: Path) -> None:
    async with accounts_on_loopback(data_dir, body_timeout=0.3) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(api_head("GetNewSession", 100) + b'{"pad": "')
        await writer.drain()
        status, headers, body = await read_answer(reader)
        assert status == 408 and headers["connection"] == "close"
        assert json.loads(body)["error_id"] == "request_timeout"
        writer.close()


async def test_without_accounts_every_caller_is_the_owner_and_known(data_dir: Path) -> None:
    async with limited_server(test_config(data_dir, comfy_port=-1)) as (host, port, _), \
            httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        session = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
        response = await http.post("/API/ListBackends", content=padded_body(5 * MB, session_id=session),
                                   headers={"Content-Type": "application/json"})
        assert response.status_code == 200 and response.json() == {}


async def test_any_early_answer_ends_a_connection_whose_large_body_is_unread(data_dir: Path) -> None:
    write_settings(data_dir, network={"RequiredAuthorization": "Bearer s3cret", "AuthBypassIPs": ""})
    async with limited_server(test_config(data_dir, comfy_port=-1)) as (host, port, _):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(api_head("ListBackends", 100 * MB) + b" " * 65536)  # refused by the gate, not by the API
        await writer.drain()
        status, _, body = await read_answer(reader)
        assert status == 401 and body == b"Unauthorized"
        assert await reader.read() == b""  # closed, not left reading and dropping 100 MB
        writer.close()


# The wire below HTTP: `swarmkeeper serve` itself, with its flags, on both ports.

@contextlib.contextmanager
def serving(data_dir: Path, *flags: str) -> Iterator[tuple[ServerProcess, int]]:
    """``swarmkeeper serve`` with these flags, and the pool's own port."""
    comfy = free_port()
    process = ServerProcess(data_dir, "--comfy_port", str(comfy), *flags).start()
    try:
        yield process, comfy
    finally:
        process.stop()


async def answer_after_silence(port: int, sent: bytes) -> tuple[bytes, float]:
    """Send ``sent`` (a request cut short), then wait: all the server sent, and seconds until it closed."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer, time.monotonic() - start


#: How early the server's timers may fire by this test's clock: uvloop's (libuv's) count whole
#: milliseconds from a loop time read at the start of the loop's turn (seen: 0.49983 s for 0.5 s).
TIMER_GRAIN = 0.002


async def test_a_half_sent_request_is_closed_after_the_header_timeout(data_dir: Path) -> None:
    with serving(data_dir, "--header_timeout", "0.5") as (server, comfy_port):
        for port in (server.port, comfy_port):
            answer, seconds = await answer_after_silence(port, b"POST /API/ListBackends HTTP/1.1\r\nContent-Ty")
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 ") and json.loads(body)["error_id"] == "request_timeout"
            assert seconds >= 0.5 - TIMER_GRAIN
            answer, seconds = await answer_after_silence(port, b"")  # nothing sent: closed without a word
            assert answer == b"" and seconds >= 0.5 - TIMER_GRAIN


async def test_trickled_headers_do_not_reset_the_header_timeout(data_dir: Path) -> None:
    with serving(data_dir, "--header_timeout", "0.5") as (server, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 40
        sent = 0

        async def trickle() -> None:  # a byte every 20 ms: 10 s of headers, each byte before the last expires
            nonlocal sent
            for index in range(len(request)):
                writer.write(request[index:index + 1])
                sent += 1
                await asyncio.sleep(0.02)

        task = asyncio.create_task(trickle())
        status, _, _ = await read_answer(reader)
        task.cancel()
        assert status == 408 and sent < len(request)
        writer.close()


async def test_the_connection_cap_is_answered(data_dir: Path) -> None:
    with serving(data_dir, "--max_connections", "4") as (server, comfy_port):
        for port in (server.port, comfy_port):
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = await read_answer(reader)
            assert status == 503 and json.loads(body)["error_id"] == "too_many_connections"
            writer.close()
            for _, held_writer in held:
                held_writer.close()
            await wait_until_served(f"http://127.0.0.1:{port}")


async def status_from(port: int, source: str) -> int:
    """A GET from the client address ``source`` (any 127.x address is this machine)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = await read_answer(reader)
    writer.close()
    return status


async def test_one_address_cannot_take_every_connection(data_dir: Path) -> None:
    with serving(data_dir, "--max_connections_per_address", "3") as (server, comfy_port):
        for port in (server.port, comfy_port):
            held = [await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0)) for _ in range(3)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0))
            status, _, body = await read_answer(reader)
            assert status == 503 and "127.0.0.3" in json.loads(body)["error"]
            writer.close()
            assert await status_from(port, "127.0.0.4") != 503  # another client is served meanwhile
            for _, held_writer in held:
                held_writer.close()


async def test_a_trusted_proxy_is_exempt_from_the_address_cap(data_dir: Path) -> None:
    with serving(data_dir, "--max_connections_per_address", "2", "--forwarded_allow_ips", "127.0.0.0/24") \
            as (server, _):
        held = [await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.5", 0))
                for _ in range(3)]
        assert await status_from(server.port, "127.0.0.5") == 200
        for _, held_writer in held:
            held_writer.close()


async def wait_until_served(url: str) -> None:
    """Once the held connections are gone, a new one is served again."""
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/health/live")).status_code != 503:
                    return
            await asyncio.sleep(0.02)
    raise AssertionError("the server never served a new connection")


# Proxy headers (docs/security.md, section 3): believed only from --forwarded_allow_ips.

BYPASSED = "10.9.8.7"


@pytest.mark.parametrize(("flags", "believed"), [((), False), (("--forwarded_allow_ips", "127.0.0.1"), True)])
async def test_x_forwarded_for_is_believed_only_from_allowed_addresses(data_dir: Path, flags: tuple[str, ...],
                                                                       believed: bool) -> None:
    write_settings(data_dir, network={"RequiredAuthorization": "Bearer s3cret", "AuthBypassIPs": BYPASSED})
    process = ServerProcess(data_dir, "--comfy_port", "-1", *flags).start(headers={"Authorization": "Bearer s3cret"})
    try:
        async with process.client() as http:
            response = await http.post("/API/GetNewSession", json={}, headers={"X-Forwarded-For": BYPASSED})
            assert response.status_code == (200 if believed else 401), response.text
    finally:
        process.stop()


# The descriptors the connection caps need.

DESCRIPTORS = """
import resource, sys
from swarmkeeper.limits import WireLimits, ensure_descriptors
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1] if sys.argv[1] == "as-is" else int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
limits = ensure_descriptors(WireLimits(max_connections=1000), ports=2)
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], limits.max_connections)
"""


@pytest.mark.parametrize(("hard", "soft", "per_port"), [("as-is", 2640, 1000), ("1024", 1024, 192)])
def test_the_open_file_limit_is_raised_to_fit_the_caps(hard: str, soft: int, per_port: int) -> None:
    """2 ports x (1,000 connections + 64 lingering) + 512 for the rest; a hard limit of 1,024 fits 192 per port."""
    run = subprocess.run([sys.executable, "-c", DESCRIPTORS, hard], capture_output=True, text=True, check=True)
    assert run.stdout.split() == [str(soft), str(per_port)], run.stderr


def test_every_limit_flag_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    security = (ROOT / "docs" / "security.md").read_text()
    for flag in ("header_timeout", "body_timeout", "keep_alive_timeout", "max_connections",
                 "max_connections_per_address", "anonymous_body_mb", "forwarded_allow_ips"):
        assert f"| `--{flag}` |" in readme and f"--{flag}" in security, flag
