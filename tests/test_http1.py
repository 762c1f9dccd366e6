"""The lean HTTP/1.1 client against a scripted server on loopback: kept-alive connections, the
three ways an answer's body ends, informational answers, size caps, and servers that misbehave."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from swarmkeeper.clients.http1 import BadHTTP, HTTP1Client, TooLarge

#: Turns one request head into the raw answer; None closes the connection without answering.
Script = Callable[[bytes], bytes | None]


@dataclass
class Scripted:
    """A server that answers every request with its script, and counts its connections."""

    script: Script
    #: Close each connection after one answer (as a server does for an answer without a length).
    close_after_answer: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                answer = self.script(head)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    break
        writer.close()


@contextlib.asynccontextmanager
async def scripted(script: Script, *, close_after_answer: bool = False) -> AsyncIterator[Scripted]:
    server = Scripted(script, close_after_answer)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


def answer(body: bytes, *headers: str, status: str = "200 OK") -> Script:
    head = "".join(f"{header}\r\n" for header in headers)
    return lambda request: f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


def client(server: Scripted, base_path: str = "", **headers: str) -> HTTP1Client:
    return HTTP1Client("127.0.0.1", server.port, base_path, headers)


async def test_a_kept_alive_connection_serves_the_next_calls() -> None:
    async with scripted(answer(b'{"a": 1}', "Content-Length: 8")) as server:
        http = client(server, "/api", Authorization="Bearer x")
        for _ in range(3):
            assert await http.request("POST", "/prompt", b"{}", content_type="application/json", limit=100) == \
                (200, b'{"a": 1}')
        http.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /api/prompt HTTP/1.1\r\n") and first.endswith(b"\r\n\r\n{}")
    assert b"\r\nAuthorization: Bearer x\r\n" in first and b"\r\nContent-Length: 2\r\n" in first
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in first


async def test_chunked_answers_are_joined_and_their_trailers_skipped() -> None:
    body = b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nTrailer: yes\r\n\r\n"
    async with scripted(answer(body, "Transfer-Encoding: chunked")) as server:
        http = client(server)
        assert await http.request("GET", "/x", limit=100) == (200, b"abcdefg")
        assert await http.request("GET", "/x", limit=100) == (200, b"abcdefg")
        assert server.connections == 1
        with pytest.raises(TooLarge) as caught:
            await http.request("GET", "/x", limit=5)
        assert caught.value.declared is None


async def test_an_answer_without_length_ends_with_its_connection() -> None:
    async with scripted(answer(b"to the end"), close_after_answer=True) as server:
        http = client(server)
        assert await http.request("GET", "/", limit=100) == (200, b"to the end")
        assert await http.request("GET", "/", limit=100) == (200, b"to the end")
        assert server.connections == 2
        with pytest.raises(TooLarge):
            await http.request("GET", "/", limit=5)


async def test_connection_close_and_http10_answers_are_not_reused() -> None:
    for script in (answer(b"ok", "Content-Length: 2", "Connection: close"),
                   lambda request: b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"):
        async with scripted(script) as server:
            http = client(server)
            await http.request("GET", "/", limit=10)
            await http.request("GET", "/", limit=10)
            assert server.connections == 2


async def test_informational_answers_come_before_the_real_one() -> None:
    async with scripted(lambda request: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\n"
                                        b"Content-Length: 4\r\n\r\ngone") as server:
        assert await client(server).request("GET", "/", limit=10) == (404, b"gone")


async def test_a_declared_size_over_the_cap_is_refused_before_reading() -> None:
    async with scripted(answer(b"x" * 50, "Content-Length: 50")) as server:
        with pytest.raises(TooLarge) as caught:
            await client(server).request("GET", "/", limit=10)
    assert caught.value.declared == 50


@pytest.mark.parametrize("raw", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
async def test_what_is_not_http_is_bad_http(raw: bytes) -> None:
    async with scripted(lambda request: raw) as server:
        with pytest.raises(BadHTTP):
            await client(server).request("GET", "/", limit=100)


async def test_a_server_that_closes_without_answering_is_an_eof() -> None:
    async with scripted(lambda request: None) as server:
        with pytest.raises(EOFError):
            await client(server).request("GET", "/", limit=100)


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async with scripted(answer(b"ok", "Content-Length: 2", "Connection: keep-alive")) as server:
        http = client(server)
        await http.request("GET", "/", limit=10)
        for idle in http._idle:  # as a server's keep-alive timeout does
            idle.writer.transport.abort()
        await asyncio.sleep(0.05)
        assert await http.request("GET", "/", limit=10) == (200, b"ok")
        assert server.connections == 2


async def test_a_closed_client_makes_no_calls() -> None:
    async with scripted(answer(b"ok", "Content-Length: 2")) as server:
        http = client(server)
        http.close()
        with pytest.raises(RuntimeError, match="closed"):
            await http.request("GET", "/", limit=10)


@pytest.mark.parametrize(("url", "served"), [
    ("http://127.0.0.1:8188", True), ("http://localhost/api", True), ("http://[::1]:8188", True),
    ("https://example.com", False), ("http://user:pw@example.com", False), ("http://example.com/a b", False),
    ("http://example.com/%41", False),
])
def test_which_addresses_it_serves(url: str, served: bool) -> None:
    assert (HTTP1Client.for_url(url, {}) is not None) is served


def test_headers_with_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        HTTP1Client("127.0.0.1", 80, "", {"X-Evil": "a\r\nInjected: yes"})
    assert HTTP1Client.for_url("http://127.0.0.1", {"X-Evil": "a\nb"}) is None


async def test_a_call_started_on_an_idle_connection_is_answered_when_awaited() -> None:
    async with scripted(answer(b"ok", "Content-Length: 2")) as server:
        http = client(server)
        assert http.start("POST", "/prompt", b"{}", content_type="application/json") is None  # none idle yet
        await http.request("GET", "/", limit=10)
        exchange = http.start("POST", "/prompt", b'{"a": 1}', content_type="application/json")
        assert exchange is not None
        assert not http._idle  # the connection is the exchange's until its answer is read
        assert await exchange.answer(10) == (200, b"ok")
        assert server.connections == 1 and len(http._idle) == 1
        assert server.requests[1].startswith(b"POST /prompt HTTP/1.1\r\n")
        assert server.requests[1].endswith(b"\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")
        http.close()
        assert http.start("GET", "/") is None


async def test_an_abandoned_call_closes_its_connection() -> None:
    async with scripted(answer(b"ok", "Content-Length: 2")) as server:
        http = client(server)
        await http.request("GET", "/", limit=10)
        exchange = http.start("GET", "/")
        assert exchange is not None
        exchange.abandon()
        assert exchange.connection.writer.is_closing()
        assert await http.request("GET", "/", limit=10) == (200, b"ok")
        assert server.connections == 2
