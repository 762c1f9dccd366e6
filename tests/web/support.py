"""Helpers the web tests share: users of a given role, a Server-Sent Events reader, and the
backend log lines routed into a server's log store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from swarmkeeper.api.permissions import role_permissions
from swarmkeeper.api.sessions import Session
from swarmkeeper.api.users import User
from swarmkeeper.logs import LogStore, LogStoreHandler
from tests.servers import LoopbackServer

#: The types every web test server loads: the dummy types, and a type with a real child process.
WEB_TYPES = ("swarmkeeper.testing.dummy_backend", "tests.web.process_backend")


class RoleUsers:
    """A UserSource where every caller holds one built-in role's default permissions."""

    def __init__(self, role: str, name: str = "tester") -> None:
        self.role = role
        self.name = name

    def _user(self, user_id: str) -> User:
        return User(user_id, (self.role,), role_permissions(self.role))

    async def user_for_request(self, connection: HTTPConnection) -> User | None:
        return self._user(self.name)

    async def user_by_id(self, user_id: str) -> User | None:
        return self._user(user_id)

    async def user_for_session(self, session: Session, connection: HTTPConnection) -> User | None:
        return self._user(session.user_id)

    async def user_for_bearer(self, connection: HTTPConnection) -> User | None:
        return None


@dataclass(frozen=True)
class SSEMessage:
    """One message of a stream: an event with JSON data, or a comment (``event`` is "")."""

    event: str = ""
    data: Any = None
    comment: str = ""
    retry: int | None = None


async def sse_messages(lines: AsyncIterator[str]) -> AsyncIterator[SSEMessage]:
    """Parse an event stream's lines into messages (enough of the format for these tests)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line.startswith(":"):
            yield SSEMessage(comment=line[1:].strip())
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        elif fields:
            retry = int(fields["retry"]) if "retry" in fields else None
            data = json.loads(fields["data"]) if "data" in fields else None
            yield SSEMessage(event=fields.get("event", "message"), data=data, retry=retry)
            fields = {}


@contextlib.contextmanager
def backend_logs(store: LogStore) -> Iterator[None]:
    """Route swarmkeeper's log lines into ``store`` (as `swarmkeeper serve` does) for a while."""
    logger = logging.getLogger("swarmkeeper")
    handler = LogStoreHandler(store)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def until(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Wait until ``condition()`` holds on the server's side (the page may still show the state
    from before an action that ends in the same status, e.g. running → restart → running)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def status_of(server: LoopbackServer, backend_id: int) -> str:
    record = server.services.registry.get(backend_id)
    return "" if record is None else str(record.status)
