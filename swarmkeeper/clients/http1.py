"""A lean HTTP/1.1 client: calls to one plain-``http://`` server over kept-alive connections.

:class:`~swarmkeeper.clients.comfyui.ComfyClient` sends its JSON calls here when it can. httpx
costs about a millisecond of CPU per request (its request and response models, anyio, the
connection pool's locks) and the pool makes such a call for every prompt it forwards; this client
costs some tens of microseconds. It does only what those calls need: a method, a path, an
optional body and fixed headers out; an answer with a Content-Length, chunked, or read to the end
of the connection back.

Errors are the standard library's (``OSError``, ``EOFError`` when the server closed the connection
without answering) or this module's :class:`BadHTTP` and :class:`TooLarge`; ComfyClient maps them
at its one error boundary, as it maps httpx's.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

#: Idle connections kept for the next calls.
MAX_IDLE = 8
#: Longest status line and headers accepted (asyncio's stream limit).
MAX_HEAD = 64 * 1024
USER_AGENT = "swarmkeeper"


class BadHTTP(Exception):
    """The answer is not HTTP/1.x as this client reads it."""


class TooLarge(Exception):
    """The answer's body is larger than the caller allows; ``declared`` is its Content-Length, if
    it had one."""

    def __init__(self, declared: int | None) -> None:
        super().__init__(f"answer larger than allowed ({declared} bytes declared)" if declared else
                         "answer larger than allowed")
        self.declared = declared


@dataclass
class Answer:
    status: int
    body: bytes
    keep_alive: bool


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        """Still open at both ends (a server closes idle connections after a while)."""
        return not (self.reader.at_eof() or self.reader.exception() or self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class HTTP1Client:
    """Requests to ``http://host:port`` + ``base_path``, with ``headers`` on each."""

    def __init__(self, host: str, port: int, base_path: str, headers: Mapping[str, str]) -> None:
        self.host = host
        self.port = port
        self.base_path = base_path
        netloc = f"[{host}]" if ":" in host else host
        fixed = {"Host": f"{netloc}:{port}", "Accept": "*/*", "User-Agent": USER_AGENT, **headers}
        if any(c in text for item in fixed.items() for text in item for c in "\r\n"):
            raise ValueError("A header name or value contains a line break.")
        self._fixed_head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._idle: list[Connection] = []
        self._closed = False

    @classmethod
    def for_url(cls, url: str, headers: Mapping[str, str]) -> HTTP1Client | None:
        """A client for a normalised base URL, or None when this client cannot serve it (https, a
        user name in the URL, a path that would need quoting)."""
        parts = urllib.parse.urlsplit(url)
        path_ok = all(c.isascii() and c.isprintable() and c not in " ?#%" for c in parts.path)
        if parts.scheme != "http" or not parts.hostname or parts.username is not None or not path_ok:
            return None
        try:
            return cls(parts.hostname, parts.port or 80, parts.path, headers)
        except ValueError:
            return None

    async def request(self, method: str, path: str, body: bytes | None = None, *, content_type: str = "",
                      limit: int) -> tuple[int, bytes]:
        """(status, body) of one call; ``path`` is already quoted. The caller bounds the time."""
        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        exchange = self.start(method, path, body, content_type=content_type)
        if exchange is None:
            connection = await self._connect()
            exchange = Exchange(self, connection, method)
            exchange.write(self._head(method, path, body, content_type), body)
        return await exchange.answer(limit)

    def start(self, method: str, path: str, body: bytes | None = None, *,
              content_type: str = "") -> Exchange | None:
        """The request written now, on a kept-alive connection, without yielding to the event loop;
        its answer is read by awaiting :meth:`Exchange.answer`. None when no such connection is idle
        (or the client is closed): then :meth:`request`, which connects."""
        connection = None if self._closed else self._reuse()
        if connection is None:
            return None
        exchange = Exchange(self, connection, method)
        exchange.write(self._head(method, path, body, content_type), body)
        return exchange

    def _head(self, method: str, path: str, body: bytes | None, content_type: str) -> bytes:
        head = f"{method} {self.base_path}{path} HTTP/1.1\r\n{self._fixed_head}"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        return head.encode("latin-1") + b"\r\n"

    def keep(self, connection: Connection, keep_alive: bool) -> None:
        """A call on the connection is over: kept for the next, or closed."""
        if keep_alive and not self._closed and len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        else:
            connection.close()

    def _reuse(self) -> Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None

    async def _connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        return Connection(reader, writer)

    def close(self) -> None:
        """Close the idle connections; a call under way closes its own when it ends."""
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class Exchange:
    """One request on its connection: written at once, its answer awaited later (once)."""

    def __init__(self, client: HTTP1Client, connection: Connection, method: str) -> None:
        self.client = client
        self.connection = connection
        self.method = method

    def write(self, head: bytes, body: bytes | None) -> None:
        try:
            self.connection.writer.write(head + body if body else head)
        except BaseException:
            self.connection.close()
            raise

    async def answer(self, limit: int) -> tuple[int, bytes]:
        """(status, body); the connection goes back to the client's idle ones when it can."""
        try:
            await self.connection.writer.drain()
            answer = await read_answer(self.connection.reader, self.method, limit)
        except BaseException:
            self.connection.close()
            raise
        self.client.keep(self.connection, answer.keep_alive)
        return answer.status, answer.body

    def abandon(self) -> None:
        """The answer will not be read: the connection is closed."""
        self.connection.close()


# --- reading an answer ---


async def read_answer(reader: asyncio.StreamReader, method: str, limit: int) -> Answer:
    status, version, headers = parse_head(await read_head(reader))
    while 100 <= status < 200:  # an informational answer comes before the real one
        status, version, headers = parse_head(await read_head(reader))
    keep_alive = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        return Answer(status, b"", keep_alive)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Answer(status, await read_chunked(reader, limit), keep_alive)
    if "content-length" in headers:
        length = parse_length(headers["content-length"])
        if length > limit:
            raise TooLarge(length)
        return Answer(status, await reader.readexactly(length), keep_alive)
    return Answer(status, await read_to_end(reader, limit), False)


async def read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise BadHTTP("The answer's headers are too long.") from None


def parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    """Status, HTTP version and headers (lower-case names; repeated ones joined by commas)."""
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise BadHTTP(f"Not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise BadHTTP(f"Not an HTTP header line: {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(code), version, headers


def parse_length(text: str) -> int:
    if not text.isdigit():
        raise BadHTTP(f"Not a Content-Length: {text[:40]!r}")
    return int(text)


async def read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            length = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadHTTP("Not a chunk size line.") from None
        if length == 0:
            break
        size += length
        if size > limit:
            raise TooLarge(None)
        chunks.append(await reader.readexactly(length))
        await reader.readexactly(2)
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the blank line
        pass
    return b"".join(chunks)


async def read_to_end(reader: asyncio.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await reader.read(65536):
        size += len(chunk)
        if size > limit:
            raise TooLarge(None)
        chunks.append(chunk)
    return b"".join(chunks)
