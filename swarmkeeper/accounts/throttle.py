"""Login throttling: failed logins from one address, or for one user name, first slow down, then
lock for a while.

Each key (``address:<ip>``, ``user:<name>``) counts its failures within a window. Past
``free_failures`` the next attempt must wait (2 s, doubling, at most ``max_wait``); at
``lock_after`` failures the key is locked for ``lock_seconds``. An attempt made too early is
refused without checking the password, so parallel guessing gains nothing. A success clears the
user's count (not the address's: one good account must not reset guessing at others).

The state is in memory: a restart forgets it. It is bounded (``max_tracked`` keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    first_wait: float = 2.0
    max_wait: float = 60.0
    lock_after: int = 10
    lock_seconds: float = 900.0
    window_seconds: float = 900.0
    max_tracked: int = 10000

    def wait_after(self, failures: int) -> float:
        """How long to wait before the next attempt after this many failures."""
        if failures <= self.free_failures:
            return 0.0
        return min(self.first_wait * 2.0 ** (failures - self.free_failures - 1), self.max_wait)


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    next_allowed: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True)
class Refusal:
    retry_after: float
    locked: bool

    def message(self) -> str:
        seconds = max(1, round(self.retry_after))
        if self.locked:
            return f"Too many failed logins: locked for {seconds} more seconds."
        return f"Too many failed logins: wait {seconds} seconds before trying again."


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ThrottlePolicy()
        self.clock = clock
        self._records: dict[str, _Record] = {}

    def check(self, keys: Iterable[str]) -> Refusal | None:
        """None if an attempt may go ahead now; else how long until it may."""
        now = self.clock()
        found = (self._refusal(self._records[key], now) for key in keys if key in self._records)
        refusals = [refusal for refusal in found if refusal is not None]
        if not refusals:
            return None
        return max(refusals, key=lambda refusal: (refusal.locked, refusal.retry_after))

    @staticmethod
    def _refusal(record: _Record, now: float) -> Refusal | None:
        if record.locked_until > now:
            return Refusal(record.locked_until - now, locked=True)
        if record.next_allowed > now:
            return Refusal(record.next_allowed - now, locked=False)
        return None

    def failed(self, keys: Iterable[str]) -> list[str]:
        """Count a failure against each key; returns the keys this failure locked."""
        now = self.clock()
        locked = []
        for key in keys:
            record = self._records.setdefault(key, _Record())
            if now - record.last_failure > self.policy.window_seconds:
                record.failures = 0
            record.failures += 1
            record.last_failure = now
            record.next_allowed = now + self.policy.wait_after(record.failures)
            if record.failures >= self.policy.lock_after and record.locked_until <= now:
                record.locked_until = now + self.policy.lock_seconds
                record.failures = 0
                locked.append(key)
        self._prune(now)
        return locked

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)

    def _prune(self, now: float) -> None:
        if len(self._records) <= self.policy.max_tracked:
            return
        stale = [key for key, record in self._records.items()
                 if record.locked_until <= now and now - record.last_failure > self.policy.window_seconds]
        for key in stale:
            del self._records[key]
        overflow = len(self._records) - self.policy.max_tracked
        if overflow > 0:
            def evict_order(key: str) -> tuple[bool, float]:  # unlocked first, then the oldest
                record = self._records[key]
                return record.locked_until > now, record.last_failure

            oldest = sorted(self._records, key=evict_order)[:overflow]
            for key in oldest:
                del self._records[key]
