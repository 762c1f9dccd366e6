"""Does checking a wrong API key take the same time as checking the right one?

    .venv/bin/python bench/api_key_compare.py [--rounds 101] [--calls 5000]

Times, interleaved in rounds (so drift hits every case alike), the median cost per call of:
the secret comparison alone (right secret, wrong in its first character, wrong in its last) and
the whole ``KeyStore.check`` (wrong secret, unknown id, right key) on an in-memory database. Each
is printed as a ratio to the first case of its group in the same run. The goal, for the comparison:
every ratio within 10 % of 1.0 (a plain ``==`` on the same digests is shown for contrast: it quits
at the first differing byte). The database path is shown for information. Exits 1 if the goal is
missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hmac
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swarmkeeper.accounts.apikeys import KeyStore, parse_key, secret_hash, secret_matches
from swarmkeeper.db import Database


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1:]


def time_sync(cases: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    gc.disable()
    try:
        for _ in range(rounds):
            random.shuffle(order)  # no case always runs first (warm caches) or last
            for name in order:
                case = cases[name]
                started = time.perf_counter_ns()
                for _ in range(calls):
                    case()
                samples[name].append((time.perf_counter_ns() - started) / calls)
    finally:
        gc.enable()
    return {name: statistics.median(samples[name]) for name in cases}


async def time_async(cases: dict[str, Callable[[], Awaitable[object]]], rounds: int, calls: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for _ in range(rounds):
        random.shuffle(order)
        for name in order:
            case = cases[name]
            started = time.perf_counter_ns()
            for _ in range(calls):
                await case()
            samples[name].append((time.perf_counter_ns() - started) / calls)
    return {name: statistics.median(samples[name]) for name in cases}


def report(title: str, medians: dict[str, float], tolerance: float | None) -> bool:
    """Print each case's ratio to the first; True if every ratio (but the contrasts') is within
    ``tolerance`` of 1 (None: shown for information)."""
    baseline = next(iter(medians.values()))
    print(title)
    fine = True
    for name, median in medians.items():
        ratio = median / baseline
        print(f"  {name:<28} {median:10.1f} ns/call   ratio {ratio:5.3f}")
        if tolerance is not None and not name.startswith("(contrast)"):
            fine = fine and abs(ratio - 1.0) <= tolerance
    return fine


async def database_cases(rounds: int, calls: int) -> dict[str, float]:
    db = await Database.open(":memory:")
    await db.execute("INSERT INTO users (name, role, password_hash, created) VALUES ('bench', 'user', 'x', 0)")
    keys = KeyStore(db)
    _, right = await keys.create("bench", "bench", "", None)
    parsed = parse_key(right)
    assert parsed is not None
    wrong = f"swk_{parsed.id}_{flip(parsed.secret, len(parsed.secret) - 1)}"
    unknown = f"swk_{'0' * 12}_{parsed.secret}"
    try:
        return await time_async({"check: wrong secret": lambda: keys.check(wrong),
                                 "check: unknown id": lambda: keys.check(unknown),
                                 "check: right key": lambda: keys.check(right)}, rounds, calls)
    finally:
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=101)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    secret = "k" * 43
    stored = secret_hash(secret)
    first, last = flip(secret, 0), flip(secret, len(secret) - 1)
    compare = time_sync({
        "right secret": lambda: secret_matches(stored, secret),
        "wrong first character": lambda: secret_matches(stored, first),
        "wrong last character": lambda: secret_matches(stored, last),
    }, args.rounds, args.calls)
    fine = report("secret_matches (hash, then constant-time compare)", compare, 0.10)
    raw, early, late = stored.encode(), secret_hash(first).encode(), flip(stored, len(stored) - 1).encode()
    same = bytes(raw)
    digests = time_sync({
        "compare_digest equal": lambda: hmac.compare_digest(raw, same),
        "compare_digest differs early": lambda: hmac.compare_digest(raw, early),
        "compare_digest differs late": lambda: hmac.compare_digest(raw, late),
        "(contrast) == equal": lambda: raw == same,
        "(contrast) == differs early": lambda: raw == early,
    }, args.rounds, args.calls)
    fine = report("the comparison alone, on 64-byte digests", digests, 0.10) and fine
    checks = asyncio.run(database_cases(max(args.rounds // 4, 5), max(args.calls // 10, 200)))
    report("KeyStore.check on in-memory SQLite, for information (a right key then builds its user)", checks, None)
    print("goal met" if fine else "goal MISSED")
    return 0 if fine else 1


if __name__ == "__main__":
    raise SystemExit(main())
