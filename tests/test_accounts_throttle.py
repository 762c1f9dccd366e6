"""Login throttling: failures slow down, then lock, per address and per user; the lockout is in
the audit log. Time is a fake clock, never a real wait."""

from __future__ import annotations

from dataclasses import dataclass

from swarmkeeper.accounts.throttle import LoginThrottle, Refusal, ThrottlePolicy
from tests.accounts_support import PASSWORD, Accounted

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


def test_free_failures_then_a_wait_then_a_lock() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock)
    keys = ["address:10.0.0.1", "user:bob"]
    for _ in range(3):
        assert throttle.check(keys) is None
        assert throttle.failed(keys) == []
    assert throttle.check(keys) is None
    throttle.failed(keys)  # the fourth: now a 2 s wait
    assert throttle.check(keys) == Refusal(2.0, locked=False)
    clock.advance(2.0)
    assert throttle.check(keys) is None
    for failures in range(5, 10):
        throttle.failed(keys)
        clock.advance(POLICY.wait_after(failures))
    assert throttle.failed(keys) == keys  # the tenth locks both
    refusal = throttle.check(keys)
    assert refusal == Refusal(900.0, locked=True)
    assert refusal.message() == "Too many failed logins: locked for 900 more seconds."
    clock.advance(900.0)
    assert throttle.check(keys) is None


def test_one_user_locked_does_not_lock_another_from_elsewhere() -> None:
    throttle = LoginThrottle(POLICY, FakeClock())
    for _ in range(10):
        throttle.failed(["user:bob"])
    assert throttle.check(["address:10.0.0.2", "user:bob"]) is not None
    assert throttle.check(["address:10.0.0.2", "user:carol"]) is None


def test_success_clears_the_user_not_the_address() -> None:
    throttle = LoginThrottle(POLICY, FakeClock())
    keys = ["address:10.0.0.1", "user:bob"]
    for _ in range(4):
        throttle.failed(keys)
    throttle.succeeded("user:bob")
    assert throttle.check(["user:bob"]) is None
    assert throttle.check(["address:10.0.0.1"]) is not None


def test_old_failures_are_forgotten() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock)
    for _ in range(3):
        throttle.failed(["user:bob"])
    clock.advance(901.0)
    throttle.failed(["user:bob"])
    assert throttle.check(["user:bob"]) is None  # one failure in the window, not four


def test_memory_stays_bounded_and_keeps_locks() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(ThrottlePolicy(max_tracked=50, lock_after=2), clock)
    throttle.failed(["user:bob"])
    throttle.failed(["user:bob"])  # locked
    for n in range(200):
        clock.advance(0.01)
        throttle.failed([f"address:10.1.{n // 256}.{n % 256}"])
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
    for failures in range(4, 10):
        clock.advance(POLICY.wait_after(failures))
        assert (await server.login("bob", "wrong guess")).json()["error_id"] == "invalid_login"
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
