"""The lines kept in memory per identifier (logs.LogStore)."""

from __future__ import annotations

import gc

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


def test_kept_lines_leave_the_collectors_passes() -> None:
    """A server with 1,000 backends keeps up to 2,000,000 lines; every full pass of the collector
    walked each of them while they were objects it tracks."""
    store = LogStore()
    for n in range(100):
        store.append("backend-1", "Info", f"line {n}")
    gc.collect()
    assert not any(gc.is_tracked(kept) for kept in store._lines["backend-1"])
