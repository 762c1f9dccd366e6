"""The lines kept in memory per identifier (logs.LogStore)."""

from __future__ import annotations

import collections
import gc
import random
import sys
import threading
import tracemalloc

from swarmkeeper.logs import LogLine, LogStore


def test_lines_are_kept_per_identifier_up_to_the_size_and_read_after_a_sequence() -> None:
    store = LogStore(size=3)
    for n in range(5):
        store.append("backend-1", "Info", f"line {n}", when=100.0 + n)
    store.append("Server", "Warning", "other")
    lines = store.recent("backend-1")
    assert [line.message for line in lines] == ["line 2", "line 3", "line 4"]
    assert lines[0] == LogLine(3, 102.0, "Info", "line 2")
    assert [line.message for line in store.recent("backend-1", after=lines[0].sequence)] == ["line 3", "line 4"]
    assert [line.message for line in store.recent("backend-1", limit=1)] == ["line 4"]
    assert store.identifiers() == ["Server", "backend-1"]
    assert store.recent("backend-9") == []


def test_the_store_reads_as_a_list_of_the_last_lines_would() -> None:
    """Against a plain model (every line in a deque of that size), through many wraps of the ring,
    with repeats, cycles and new messages mixed, read after any sequence and with any limit."""
    rng = random.Random(15)
    for size in (1, 2, 3, 7, 50):
        store, model = LogStore(size=size), collections.deque[LogLine](maxlen=size)
        for n in range(400):
            message = rng.choice(["refused", "refused", f"new {n}", "again", f"{rng.randrange(3)}"])
            level = rng.choice(["Info", "Warning"])
            store.append("backend-2", level, "".join(message), when=float(n))  # a new string, as logging makes
            model.append(LogLine(n + 1, float(n), level, message))
            after, limit = rng.randrange(n + 2), rng.choice([None, 1, 2, size + 1])
            expected = [line for line in model if line.sequence > after]
            assert store.recent("backend-2", after, limit) == (expected[-limit:] if limit else expected)


def test_a_repeated_line_shares_the_text_of_the_line_it_repeats() -> None:
    """A backend that fails the same way on every retry logs the same line each second, each a new
    string; kept as it came, 2,000 of them cost ~560 KB, 1,000 such backends ~560 MB."""
    store = LogStore()
    cycle = ["Connecting to ComfyUI at http://127.0.0.1:1...", "ComfyUI at http://127.0.0.1:1: Connection refused",
             "Will retry in 1 s"]
    tracemalloc.start()
    try:
        for n in range(5000):
            store.append("backend-1", "Warning", "".join(list(cycle[n % 3])))  # a new string every time
        kept, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len({id(text) for text in store._lines["backend-1"].texts}) == 3
    assert [line.message for line in store.recent("backend-1", limit=3)] == [cycle[n % 3] for n in range(4997, 5000)]
    assert kept < 2000 * 40, kept  # 24 bytes a line and the three texts (arrays grow by up to an eighth)


def test_kept_lines_leave_the_collectors_passes() -> None:
    """A server with 1,000 backends keeps up to 2,000,000 lines; every full pass of the collector
    walked each of them while they were objects it tracks."""
    store = LogStore()
    for n in range(100):
        store.append("backend-1", "Info", f"line {n}")
    gc.collect()
    ring = store._lines["backend-1"]
    assert not any(gc.is_tracked(text) for text in ring.texts)


def test_lines_appended_from_many_threads_stay_whole_and_in_order() -> None:
    """Lines come from any thread (work handed to threads logs too; two handlers share the store):
    each line's columns must stay together, and the ring in sequence order."""
    store = LogStore(size=500)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # a thread switch between almost any two bytecodes

    def write(thread: int) -> None:
        for n in range(3000):
            when = thread * 1e6 + n
            store.append("backend-1", "Info", repr(when), when=when)

    try:
        threads = [threading.Thread(target=write, args=(thread,)) for thread in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    lines = store.recent("backend-1")
    assert len(lines) == 500
    assert all(line.message == repr(line.time) for line in lines)
    assert [line.sequence for line in lines] == sorted(line.sequence for line in lines)
    assert lines[-1].sequence == 12000
