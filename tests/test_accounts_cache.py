"""The one-second row cache: changes made through the server apply at once; a change made in
another process (the CLI) is seen once the entry is a second old. A fake clock, no waiting."""

from __future__ import annotations

from dataclasses import dataclass

from swarmkeeper.accounts.cache import RowCache
from tests.accounts_support import Accounted


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_and_drops_win_over_reads_in_flight() -> None:
    clock = Clock()
    cache: RowCache[str, int] = RowCache(seconds=1.0, clock=clock)
    assert cache.get("a") == (False, None)
    cache.put("a", 1, cache.generation)
    assert cache.get("a") == (True, 1)
    clock.now = 1.0
    assert cache.get("a") == (False, None)
    started = cache.generation  # a read begins...
    cache.drop("a")  # ...a write lands meanwhile...
    cache.put("a", 1, started)  # ...and the stale read is not kept
    assert cache.get("a") == (False, None)


async def test_a_change_from_another_process_is_seen_within_the_second(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("bob", "user")
    session, key = await server.session_for("bob"), await server.key_for("bob")
    clock = Clock()
    server.accounts.users.cache = RowCache(clock=clock)
    server.accounts.keys.cache = RowCache(clock=clock)
    assert (await server.call("ListBackends", session=session)).json()["error_id"] == "bad_permissions"
    assert (await server.call("ListBackends", key=key)).json()["error_id"] == "bad_permissions"
    db = server.services.db  # what `swarmkeeper users set-role` / `keys revoke` do from another process
    await db.execute("UPDATE users SET role = 'admin' WHERE name = 'bob'")
    await db.execute("UPDATE api_keys SET revoked = 1")
    assert (await server.call("ListBackends", session=session)).json()["error_id"] == "bad_permissions"
    clock.now = 1.0
    assert (await server.call("ListBackends", session=session)).json() == {}
    assert (await server.call("ListBackends", key=key)).json()["error"] == "This API key has been revoked."
