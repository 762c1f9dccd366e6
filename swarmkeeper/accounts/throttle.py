"""Login throttling: attempts from one address, or for one user name, first slow down, then lock
for a while.

An attempt counts when it *starts*, before its password is checked, against each of its keys
(``address:<ip>``, ``user:<name>``), so guesses sent in parallel are counted one by one while
their checks are still running. Within a window, the first ``free_failures`` attempts go ahead
at once; each later one must wait (2 s, doubling, at most ``max_wait``) after the one before it.
An attempt made too early is refused without checking the password, and still counts: the one
that brings a key to ``lock_after`` locks it for ``lock_seconds``. During a lock every attempt is
refused, the right password too, and is not counted (a lock does not grow).

A success takes back its own count: the user's whole count (not a lock that began meanwhile),
and one from the address (one good account must not reset guessing at others).

The state is in memory: a restart forgets it. It is bounded (``max_tracked`` keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    first_wait: float = 2.0
    max_wait: float = 60.0
    lock_after: int = 10
    lock_seconds: float = 900.0
    window_seconds: float = 900.0
    max_tracked: int = 10000

    def wait_after(self, attempts: int) -> float:
        """How long to wait before the next attempt after this many unsuccessful ones."""
        if attempts <= self.free_failures:
            return 0.0
        return min(self.first_wait * 2.0 ** (attempts - self.free_failures - 1), self.max_wait)


@dataclass
class _Record:
    attempts: int = 0
    last_attempt: float = 0.0
    next_allowed: float = 0.0
    locked_until: float = 0.0

    def locked(self, now: float) -> bool:
        return self.locked_until > now


@dataclass(frozen=True)
class Refusal:
    retry_after: float
    locked: bool

    def message(self) -> str:
        seconds = max(1, round(self.retry_after))
        if self.locked:
            return f"Too many failed logins: locked for {seconds} more seconds."
        return f"Too many failed logins: wait {seconds} seconds before trying again."


@dataclass(frozen=True)
class Start:
    """What :meth:`LoginThrottle.begin` decided: a refusal (None: check the password now), and
    the keys this attempt locked (for the log and the audit log)."""

    refusal: Refusal | None = None
    locked: tuple[str, ...] = field(default=())


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ThrottlePolicy()
        self.clock = clock
        self._records: dict[str, _Record] = {}

    def check(self, keys: Iterable[str]) -> Refusal | None:
        """None if an attempt would go ahead now; else how long until it would (counts nothing)."""
        now = self.clock()
        refusals = [self._refusal(self._records[key], now) for key in keys if key in self._records]
        found = [refusal for refusal in refusals if refusal is not None]
        if not found:
            return None
        return max(found, key=lambda refusal: (refusal.locked, refusal.retry_after))

    @staticmethod
    def _refusal(record: _Record, now: float) -> Refusal | None:
        if record.locked(now):
            return Refusal(record.locked_until - now, locked=True)
        if record.next_allowed > now:
            return Refusal(record.next_allowed - now, locked=False)
        return None

    def begin(self, keys: Iterable[str]) -> Start:
        """Count an attempt against each key, now, and say whether it may check its password."""
        keys = list(keys)
        refusal = self.check(keys)
        if refusal is not None and refusal.locked:
            return Start(refusal)
        now = self.clock()
        locked = tuple(key for key in keys if self._count(key, now, early=refusal is not None))
        self._prune(now)
        if locked:
            return Start(Refusal(self.policy.lock_seconds, locked=True), locked)
        return Start(refusal)

    def _count(self, key: str, now: float, *, early: bool) -> bool:
        """One more attempt on ``key``; True if it locked the key."""
        record = self._records.setdefault(key, _Record())
        if now - record.last_attempt > self.policy.window_seconds:
            record.attempts = 0
        record.attempts += 1
        record.last_attempt = now
        if record.attempts >= self.policy.lock_after:
            record.locked_until = now + self.policy.lock_seconds
            record.attempts = 0
            record.next_allowed = 0.0
            return True
        if not early:
            record.next_allowed = now + self.policy.wait_after(record.attempts)
        return False

    def succeeded(self, user_key: str, address_key: str) -> None:
        """The attempt counted by :meth:`begin` found the right password: take its count back."""
        now = self.clock()
        user = self._records.get(user_key)
        if user is not None and not user.locked(now):
            del self._records[user_key]
        address = self._records.get(address_key)
        if address is not None and address.attempts > 0:
            address.attempts -= 1
            address.next_allowed = min(address.next_allowed,
                                       address.last_attempt + self.policy.wait_after(address.attempts))

    def _prune(self, now: float) -> None:
        if len(self._records) <= self.policy.max_tracked:
            return
        stale = [key for key, record in self._records.items()
                 if not record.locked(now) and now - record.last_attempt > self.policy.window_seconds]
        for key in stale:
            del self._records[key]
        overflow = len(self._records) - self.policy.max_tracked
        if overflow > 0:
            def evict_order(key: str) -> tuple[bool, float]:  # unlocked first, then the oldest
                record = self._records[key]
                return record.locked(now), record.last_attempt

            oldest = sorted(self._records, key=evict_order)[:overflow]
            for key in oldest:
                del self._records[key]
