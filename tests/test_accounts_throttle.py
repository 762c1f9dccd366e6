"""Login throttling: failures slow down, then lock, per address and per user; the lockout is in
the audit log. Time is a fake clock, never a real wait."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper.accounts.passwords import client_prehash
from swarmkeeper.accounts.throttle import LoginThrottle, Refusal, Start, ThrottlePolicy
from tests.accounts_support import PASSWORD, Accounted, write_settings
from tests.servers import on_loopback, test_config

POLICY = ThrottlePolicy(free_failures=3, first_wait=2.0, max_wait=60.0, lock_after=10, lock_seconds=900.0,
                        window_seconds=900.0)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_waits_grow_then_cap() -> None:
    assert [POLICY.wait_after(n) for n in range(1, 11)] == [0, 0, 0, 2, 4, 8, 16, 32, 60, 60]


def fail(throttle: LoginThrottle, keys: list[str]) -> Start:
    """Begin an attempt whose password turns out wrong (nothing more is told to the throttle)."""
    return throttle.begin(keys)


def test_free_attempts_then_a_wait_then_a_lock() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock)
    keys = ["address:10.0.0.1", "user:bob"]
    for _ in range(4):
        assert fail(throttle, keys) == Start()
    assert throttle.check(keys) == Refusal(2.0, locked=False)  # the fourth: now a 2 s wait
    clock.advance(2.0)
    for attempts in range(5, 10):
        assert fail(throttle, keys) == Start()
        clock.advance(POLICY.wait_after(attempts))
    start = fail(throttle, keys)  # the tenth locks both, and is itself refused
    assert start == Start(Refusal(900.0, locked=True), tuple(keys))
    assert start.refusal is not None
    assert start.refusal.message() == "Too many failed logins: locked for 900 more seconds."
    clock.advance(899.0)
    assert throttle.begin(keys) == Start(Refusal(1.0, locked=True))  # refused, not counted: the lock does not grow
    clock.advance(1.0)
    assert throttle.check(keys) is None


def test_an_attempt_counts_when_it_starts_so_parallel_guesses_are_counted() -> None:
    """40 attempts begun before any check ends: four go ahead, five are too early, the tenth
    locks, the rest meet the lock."""
    throttle = LoginThrottle(POLICY, FakeClock())
    keys = ["address:10.0.0.1", "user:bob"]
    starts = [throttle.begin(keys) for _ in range(40)]
    allowed = [start for start in starts if start.refusal is None]
    assert len(allowed) == POLICY.free_failures + 1
    assert [start.refusal.locked for start in starts[4:9] if start.refusal] == [False] * 5
    assert starts[9] == Start(Refusal(900.0, locked=True), tuple(keys))
    assert all(start == Start(Refusal(900.0, locked=True)) for start in starts[10:])
    throttle.succeeded("user:bob", "address:10.0.0.1")  # a right password among the four: the lock stays
    assert throttle.check(keys) == Refusal(900.0, locked=True)


def test_one_user_locked_does_not_lock_another_from_elsewhere() -> None:
    throttle = LoginThrottle(POLICY, FakeClock())
    for _ in range(10):
        throttle.begin(["user:bob"])
    assert throttle.check(["address:10.0.0.2", "user:bob"]) is not None
    assert throttle.check(["address:10.0.0.2", "user:carol"]) is None


def test_success_clears_the_user_and_takes_back_one_from_the_address() -> None:
    throttle = LoginThrottle(POLICY, FakeClock())
    keys = ["address:10.0.0.1", "user:bob"]
    for _ in range(4):
        fail(throttle, keys)
    throttle.succeeded("user:bob", "address:10.0.0.1")  # the fourth was right after all
    assert throttle.check(["user:bob"]) is None
    assert throttle.check(["address:10.0.0.1"]) is None  # three counted: no wait yet
    fail(throttle, ["address:10.0.0.1", "user:carol"])
    assert throttle.check(["address:10.0.0.1"]) is not None  # but guessing at others goes on counting


def test_many_successes_from_one_address_never_slow_it() -> None:
    throttle = LoginThrottle(POLICY, FakeClock())
    for n in range(50):
        assert throttle.begin(["address:10.0.0.1", f"user:u{n}"]) == Start()
        throttle.succeeded(f"user:u{n}", "address:10.0.0.1")
    assert throttle.check(["address:10.0.0.1"]) is None


def test_old_attempts_are_forgotten() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock)
    for _ in range(3):
        fail(throttle, ["user:bob"])
    clock.advance(901.0)
    fail(throttle, ["user:bob"])
    assert throttle.check(["user:bob"]) is None  # one attempt in the window, not four


def test_memory_stays_bounded_and_keeps_locks() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(ThrottlePolicy(max_tracked=50, lock_after=2), clock)
    throttle.begin(["user:bob"])
    throttle.begin(["user:bob"])  # locked
    for n in range(200):
        clock.advance(0.01)
        throttle.begin([f"address:10.1.{n // 256}.{n % 256}"])
    assert len(throttle._records) <= 50
    assert throttle.check(["user:bob"]) is not None and throttle.check(["user:bob"]).locked  # type: ignore[union-attr]


async def test_the_server_slows_then_locks_and_audits_the_lockout(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("root", "owner")
    await server.add_user("bob", "user")
    clock = FakeClock()
    server.accounts.throttle = LoginThrottle(POLICY, clock)
    answers = [(await server.login("bob", "wrong guess")).json()["error_id"] for _ in range(4)]
    assert answers == ["invalid_login"] * 4
    early = (await server.login("bob", PASSWORD)).json()
    assert early == {"error_id": "ratelimit", "error": "Too many failed logins: wait 2 seconds before trying again."}
    clock.advance(2.0)  # the early attempt counted (the fifth), without moving the wait
    for attempts in range(6, 10):
        assert (await server.login("bob", "wrong guess")).json()["error_id"] == "invalid_login"
        clock.advance(POLICY.wait_after(attempts))
    tenth = (await server.login("bob", "wrong guess")).json()
    assert tenth == {"error_id": "ratelimit", "error": "Too many failed logins: locked for 900 more seconds."}
    clock.advance(60)
    locked = (await server.login("bob", PASSWORD)).json()  # the right password, but locked
    assert locked == {"error_id": "ratelimit", "error": "Too many failed logins: locked for 840 more seconds."}
    clock.advance(840)
    root = await server.session_for("root")  # another address would be free; here the lock has passed
    entries = (await server.ok("ListAuditLog", {"user": "bob"}, session=root))["entries"]
    lockout = [entry for entry in entries if entry["route"] == "LoginLockout"]
    assert len(lockout) == 1
    assert lockout[0]["outcome"] == "locked" and lockout[0]["address"] == "203.0.113.7"
    assert lockout[0]["changes"] == {"locked": ["address:203.0.113.7", "user:bob"], "seconds": 900.0}
    assert (await server.login("bob", PASSWORD)).json() == {"success": "true"}


async def test_change_password_is_throttled_too(app_client_with_accounts: Accounted) -> None:
    server = app_client_with_accounts
    await server.add_user("bob", "user")
    session = await server.session_for("bob")
    server.accounts.throttle = LoginThrottle(POLICY, FakeClock())
    body = {"oldPassword": "guess guess", "newPassword": "whatever123"}
    for _ in range(4):
        assert await server.error("ChangePassword", body, session=session) == "The current password is not right."
    refused = await server.error("ChangePassword", {**body, "oldPassword": PASSWORD}, session=session)
    assert refused == "Too many failed logins: wait 2 seconds before trying again."


async def test_forty_parallel_guesses_then_the_right_password_over_the_wire(
        data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The attack of issue 13, on a real socket with the real password hashing and the default
    policy: 40 wrong passwords at once, then the right one. Only the free attempts are checked
    (each check logs a failed login); the right password is refused while the lock lasts."""
    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": False})
    caplog.set_level(logging.INFO, logger="swarmkeeper.accounts")
    async with on_loopback(test_config(data_dir, require_accounts=True)) as running, \
            httpx.AsyncClient(base_url=running.url, timeout=60) as client:
        await running.services.accounts.add_user("bob", client_prehash("bob", PASSWORD), "user")

        async def login(password: str) -> dict[str, Any]:
            response = await client.post("/API/Login", json={"username": "bob", "password": password})
            return dict(response.json())

        answers = await asyncio.gather(*(login(f"guess number {n}") for n in range(40)))
        checked = [answer for answer in answers if answer["error_id"] == "invalid_login"]
        assert len(checked) == ThrottlePolicy().free_failures + 1
        assert sum(answer["error_id"] == "ratelimit" for answer in answers) == 40 - len(checked)
        assert caplog.text.count("Failed login for bob") == len(checked)
        right = await login(PASSWORD)
        assert right["error_id"] == "ratelimit"
        assert right["error"].startswith("Too many failed logins: locked for ")
        assert "swarm_token" not in client.cookies
