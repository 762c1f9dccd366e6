"""The lines kept per backend (``logs.LogStore``): memory and the cost of a line, against the store
as it was (a deque of ``(sequence, time, level, message)`` tuples per identifier), in one run.

    .venv/bin/python bench/log_store.py [--backends 200] [--lines 2000] [--rounds 5]

Each of ``--backends`` identifiers is given ``--lines`` lines as a backend that retries for ever
gives them: the same warning each time, made anew by the logging call (a new string), then the same
again with every line different. Memory is what tracemalloc counts as still held (per backend); the
time is per ``append``, median of ``--rounds``, the two stores taking turns. Ratios: the store over
the baseline (lower is better).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarmkeeper.logs import LogStore  # noqa: E402

WARNING = "ComfyUI at http://127.0.0.1:{port}: Connection refused - is the backend running, or is the address correct?"


class Store(Protocol):
    def append(self, identifier: str, level: str, message: str, when: float | None = None) -> None: ...


class TupleStore:
    """The store before: every line a tuple of its own objects, in a deque per identifier."""

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._lines: dict[str, collections.deque[tuple[int, float, str, str]]] = {}
        self._sequence = itertools.count(1)

    def append(self, identifier: str, level: str, message: str, when: float | None = None) -> None:
        buffer = self._lines.get(identifier)
        if buffer is None:
            buffer = self._lines[identifier] = collections.deque(maxlen=self.size)
        buffer.append((next(self._sequence), when if when is not None else time.time(), level, message))


def fill(store: Store, backends: int, lines: int, repeated: bool) -> float:
    """Seconds per append."""
    names = [f"backend-{n}" for n in range(backends)]
    started = time.perf_counter()
    for line in range(lines):
        for n, name in enumerate(names):
            message = WARNING.format(port=40000 + n)  # a new string, as record.getMessage() makes
            store.append(name, "Warning", message if repeated else f"{message} ({line})")
    return (time.perf_counter() - started) / (backends * lines)


def held(make: Callable[[], Store], backends: int, lines: int, repeated: bool) -> float:
    """Bytes still held per backend once the lines are in."""
    tracemalloc.start()
    try:
        store = make()
        fill(store, backends, lines, repeated)
        size, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del store
    return size / backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", type=int, default=200)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    stores: dict[str, Callable[[], Store]] = {"LogStore": LogStore, "tuples (before)": TupleStore}
    for repeated in (True, False):
        kind = "the same warning on every line" if repeated else "every line different"
        memory = {name: held(make, options.backends, options.lines, repeated) for name, make in stores.items()}
        times: dict[str, list[float]] = {name: [] for name in stores}
        for _ in range(options.rounds):
            for name, make in stores.items():
                times[name].append(fill(make(), options.backends, options.lines, repeated))
        speed = {name: statistics.median(got) for name, got in times.items()}
        print(f"{options.backends} backends x {options.lines} lines, {kind}:")
        for name in stores:
            print(f"  {name:16} {memory[name] / 1024:8.1f} KB per backend, {speed[name] * 1e9:6.0f} ns per line")
        print(f"  memory ratio {memory['LogStore'] / memory['tuples (before)']:.2f}, "
              f"time ratio {speed['LogStore'] / speed['tuples (before)']:.2f}")


if __name__ == "__main__":
    main()
